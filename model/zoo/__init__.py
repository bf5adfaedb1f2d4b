"""Which model weights are there, where, and how a user gets them: the catalog, the installed models' folder,
downloads (Google Drive through gdown, mirrors over HTTP(S), local files) and the check before install."""
