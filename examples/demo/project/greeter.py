"""A tiny module for the demo task to edit."""


def greet(name):
    return f"hello, {name}"
