"""The ``muongan`` command line: one entry point over the training and service packages."""
