from kakashi_tui.cli import main

raise SystemExit(main())
