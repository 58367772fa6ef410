from tokquant.cli.app import main

main()
