import sys

from cvlab.classroom.reporter import main

sys.exit(main())
