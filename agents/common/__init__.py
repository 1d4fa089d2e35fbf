"""agents/common"""
