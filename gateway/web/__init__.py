"""The subscriber's web desk (/desk): server-rendered pages over the same data and the same
command path as the bot. Off unless `web.session_secret` is set."""
