"""rl_diffcat/sb3"""
