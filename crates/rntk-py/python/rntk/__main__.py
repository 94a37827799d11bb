import sys
from .compat import main
sys.exit(main())
