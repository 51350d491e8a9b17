"""The JobService's work, one module per concern; `server.services.jobs` delegates here.

    creation   CreateJob: validation, idempotency, admission (probe, quotas,
               transcript cache) and the one insert-and-enqueue path
    records    GetJob, ListJobs, CancelJob, DeleteJob
    watches    WatchJob, WatchJobs: snapshots, then live events
    reports    GetUsage, GetCostReport, ListWebhookDeliveries
    models     ListModels: the installed speech models

Uploads (UploadMedia, GetUpload) live in `server.uploads`.
"""
