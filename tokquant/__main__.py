from tokquant.cli.entry import main

main()
