from rl_diffcat.zoo import main

main()
