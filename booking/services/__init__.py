"""The rules of the product, with no Flask request in sight."""
