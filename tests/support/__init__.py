"""What the tests share, one module per concern.

    ports          free_port: a loopback port nothing listens on
    tokens         JWT_SECRET and token_for: tokens the test servers accept
    settings       stack_settings and the fixed values the test stack runs with
    processes      a worker, a server and the CLI as subprocesses, in the CLI's own environment
    api            Api: the three services as one user; error_details; TERMINAL
    waiting        wait_for: poll until a condition holds
    metrics        reading a /metrics endpoint
    jobs           holding a job still (its row locked)
    media          the committed media (MEDIA_DIR, LECTURE, POISON)
    mediagen       real media built at test time from the committed speech
    crafted_media  files crafted to lie about themselves
    gemini_fake    a local server speaking the Gemini REST API
    drills_stack   a private stack for fault drills

The fixtures built on these (the session stack, `settings`, `worker`, `server`,
`api`, ...) live in tests/conftest.py.
"""
