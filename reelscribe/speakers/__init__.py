"""Who speaks when: speaker turns from speech regions, voice embeddings and
clustering (`diarize`), the voice encoder (`encoder`), and labelling a
transcript's words and segments from the turns (`labels`)."""
