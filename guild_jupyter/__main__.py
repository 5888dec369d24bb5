from guild_jupyter.cli.main import main

raise SystemExit(main())
