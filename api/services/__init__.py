"""Glue between the routes and the rest of kilnworks (stores, analytics).

Routes stay thin; everything that knows the shape of another package's API lives here, so a
change in the analytics core or a store is a small change in one file.
"""
