"""The app's Qt-free half: view state, view planning and layout, background tasks and the
calls into the conversion process. Nothing here imports Qt (an import-linter contract in
pyproject.toml checks it), so all of it runs in workers and in plain pytest."""
