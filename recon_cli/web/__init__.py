"""`recon serve`: a local web page for reconstructions (FastAPI app, job queue, offline static files)."""
