"""gate/rules"""
