"""Small assets shipped with the package."""
