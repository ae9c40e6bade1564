"""The product catalog: categories and products."""
