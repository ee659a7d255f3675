"""`python -m local.gateway`: see `local.gateway.server`."""

from local.gateway.server import main

main()
