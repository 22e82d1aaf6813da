from thrum_engine.daemon.host import main

raise SystemExit(main())
