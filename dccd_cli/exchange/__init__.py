"""The exchange SDK that adapters import: the adapter base, capabilities, markets, registry."""
