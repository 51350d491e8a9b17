/**
 * Files the browser keeps (IndexedDB): uploads not yet finished, so a reload
 * resumes them without asking for the file again, and the media of finished
 * uploads, for the player. The API stores media for processing but offers no
 * way to stream it back to a browser, so the console plays its own copy.
 */

const DB = "reelscribe-console";
const UPLOADS = "uploads";
const MEDIA = "media";

/** An upload that has begun: its id, the file and its SHA-256. */
export interface PendingUpload {
  uploadId: string;
  file: File;
  sha256: string;
  /** Extra stages (Stage numbers) the job made from it will ask for. */
  stages: number[];
}

let opened: Promise<IDBDatabase> | null = null;

function db(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore(UPLOADS, { keyPath: "uploadId" });
      req.result.createObjectStore(MEDIA);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return opened;
}

async function run<T>(store: string, mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const tx = (await db()).transaction(store, mode);
  const req = op(tx.objectStore(store));
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(req.result as T);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export const pending = {
  put: (u: PendingUpload) => run<void>(UPLOADS, "readwrite", (s) => s.put(u)),
  all: () => run<PendingUpload[]>(UPLOADS, "readonly", (s) => s.getAll()),
  remove: (uploadId: string) => run<void>(UPLOADS, "readwrite", (s) => s.delete(uploadId)),
};

export const media = {
  put: (name: string, file: Blob) => run<void>(MEDIA, "readwrite", (s) => s.put(file, name)),
  get: (name: string) => run<Blob | undefined>(MEDIA, "readonly", (s) => s.get(name)),
};
