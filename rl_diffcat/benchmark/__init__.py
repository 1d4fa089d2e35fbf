"""rl_diffcat/benchmark"""
