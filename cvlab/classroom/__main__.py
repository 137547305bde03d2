"""``python -m cvlab.classroom report --workspace W`` (the reporter) or ``... singleuser`` (a JupyterHub user's
server: ``cvlab.classroom.hub``)."""
import sys

if len(sys.argv) > 1 and sys.argv[1] == "singleuser":
    from cvlab.classroom.hub import singleuser
    sys.exit(singleuser(sys.argv[2:]))

from cvlab.classroom.reporter import main  # noqa: E402

sys.exit(main())
