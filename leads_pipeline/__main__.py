"""``python -m leads_pipeline``: the ``leads`` command, for an environment whose scripts folder is not on PATH."""

from leads_pipeline.cli import app

if __name__ == "__main__":
    app(prog_name="leads")
