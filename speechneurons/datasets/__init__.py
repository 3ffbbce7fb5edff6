"""Dataset recipes, one file per dataset."""
