from kakashi_tui.frontends.cli.main import main

raise SystemExit(main())
