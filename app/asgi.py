"""The import string uvicorn serves (``app.asgi:app``), configured from the environment.

scipy.stats is imported here, before the worker serves: core.statistics imports it on first use (the CLI's commands
never need it), and a survey report's request would otherwise wait seconds for it with the event loop blocked.
"""

import scipy.stats  # noqa: F401

from app.main import create_app

app = create_app()
