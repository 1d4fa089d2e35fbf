"""agents/discrete_sac"""
