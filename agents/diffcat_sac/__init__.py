"""agents/diffcat_sac"""
