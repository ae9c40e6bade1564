"""Development tools: local gateway, embedded servers, demo data, CLI.

Never shipped in a Lambda artifact; the layer build copies only ``storefront``.
"""
