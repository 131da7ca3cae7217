from dccd_cli.cli.app import main

main()
