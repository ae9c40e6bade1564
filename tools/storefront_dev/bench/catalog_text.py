"""A generated catalog that reads like a shop's: brands, materials, products.

Search figures mean little on ``'Product 123'``: every name shares its words,
and nothing is rare. These products are built from word lists the way a shop
names things ("Fjordline Waterproof Leather Wallet"), with descriptions that
mention other products, so a query matches in names, in descriptions, or in
both, with the skew of a real catalog: some words common, most rare. A fixed
seed makes every run seed the same catalog.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["CATEGORIES", "GeneratedProduct", "generate_products"]

BRANDS = (
    "Acme", "Northwind", "Fjordline", "Alder", "Bluebird", "Copperline", "Driftwood",
    "Evergreen", "Foxglove", "Granite Peak", "Harbor", "Ironbark", "Juniper", "Kestrel",
    "Lumen", "Marlowe", "Nordvik", "Oakhurst", "Pioneer", "Quill", "Redwood", "Saltmarsh",
    "Tidewater", "Umber", "Vantage", "Willow", "Yarrow", "Zephyr", "Birchwood", "Cobalt",
    "Dune", "Ember", "Fernhill", "Glacier", "Heron", "Isle", "Lark", "Moss", "Nimbus", "Otter",
)  # fmt: skip
ADJECTIVES = (
    "Classic", "Compact", "Vintage", "Minimalist", "Rugged", "Lightweight", "Handmade",
    "Organic", "Waterproof", "Insulated", "Foldable", "Heavy-Duty", "Slim", "Oversized",
    "Recycled", "Travel", "Everyday", "Premium", "Essential", "Heritage",
)  # fmt: skip
COLOURS = (
    "Black", "White", "Navy", "Olive", "Sand", "Charcoal", "Red", "Forest Green", "Natural",
    "Slate Grey", "Mustard", "Rust", "Ivory", "Sky Blue", "Burgundy",
)  # fmt: skip
_TEXTILES = ("Cotton", "Linen", "Wool", "Merino", "Hemp", "Denim", "Felt", "Cashmere")
_HIDES = ("Leather", "Suede", "Canvas", "Cork", "Nylon")
_METALS = ("Stainless Steel", "Cast Iron", "Copper", "Aluminium", "Carbon Steel")
_CLAYS = ("Ceramic", "Stoneware", "Porcelain", "Glass", "Enamel")
_WOODS = ("Oak", "Walnut", "Bamboo", "Beech", "Olive Wood")
# A shop's departments: (product nouns, the materials they come in).
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Bags": (("Wallet", "Backpack", "Tote Bag", "Duffel Bag", "Messenger Bag"), _HIDES),
    "Clothing": (
        ("Jacket", "Hoodie", "T-Shirt", "Cardigan", "Scarf", "Beanie", "Gloves", "Socks"),
        _TEXTILES,
    ),
    "Footwear": (("Sneakers", "Boots", "Sandals", "Slippers", "Loafers"), _HIDES),
    "Kitchen": (("Frying Pan", "Saucepan", "Chef's Knife", "Kettle", "Wok"), _METALS),
    "Coffee & Tea": (("Coffee Grinder", "French Press", "Espresso Cups", "Teapot", "Mug"), _CLAYS),
    "Tableware": (("Bowl", "Plate Set", "Wine Glasses", "Serving Tray", "Pitcher"), _CLAYS),
    "Woodwork": (("Cutting Board", "Cheese Board", "Spice Rack", "Salad Servers"), _WOODS),
    "Home": (("Blanket", "Pillow", "Towel", "Throw", "Rug", "Curtains"), _TEXTILES),
    "Outdoor": (("Water Bottle", "Lunch Box", "Camping Mug", "Flask", "Cooler"), _METALS),
    "Accessories": (("Belt", "Card Holder", "Watch Strap", "Phone Case", "Keyring"), _HIDES),
}
FEATURES = (
    "Dishwasher safe.", "Machine washable at 30 degrees.", "Ships in plastic-free packaging.",
    "Comes with a lifetime repair guarantee.", "Made in a family workshop in Portugal.",
    "Fits a 15-inch laptop.", "Keeps drinks hot for 12 hours.", "Oven safe up to 250 degrees.",
    "Water-resistant finish that ages beautifully.", "Hand-stitched seams for years of use.",
    "Designed to stack neatly in small kitchens.", "Available while stocks last.",
    "Vegetable-tanned and naturally dyed.", "Certified fair trade.", "Gift-wrapped on request.",
    "Each piece is slightly different: that is the point.", "Easy to clean with a damp cloth.",
    "Folds flat for travel.", "Padded for comfort on long days.", "Non-slip base.",
)  # fmt: skip
SIZES = ("", "", "", "Small", "Medium", "Large", "XL", "500 ml", "1 L", "2-Pack", "Set of 4")


@dataclass(frozen=True)
class GeneratedProduct:
    sku: str
    name: str
    description: str
    price: Decimal
    category: str


def generate_products(count: int, seed: int = 7) -> Iterator[GeneratedProduct]:
    """``count`` products with shop-like names and descriptions, the same every run."""
    rng = random.Random(seed)
    departments = list(CATEGORIES.items())
    every_noun = [noun for _, (nouns, _) in departments for noun in nouns]
    for number in range(count):
        category, (nouns, materials) = rng.choice(departments)
        noun = rng.choice(nouns)
        brand, material = rng.choice(BRANDS), rng.choice(materials)
        words = [brand, rng.choice(ADJECTIVES), rng.choice(COLOURS), material, noun]
        if rng.random() < 0.4:
            del words[2]  # no colour
        size = rng.choice(SIZES)
        name = " ".join([*words, size] if size else words)
        adjective = rng.choice(ADJECTIVES).lower()
        description = " ".join(
            [
                f"{_article(adjective)} {adjective} {noun.lower()} in {material.lower()},"
                f" designed by {brand}.",
                *rng.sample(FEATURES, 2),
                f"Pairs well with our {rng.choice(every_noun).lower()}.",
            ]
        )
        cents = rng.randint(300, 40_000)
        yield GeneratedProduct(
            f"GEN-{number:06}", name, description, Decimal(cents) / 100, category
        )


def _article(word: str) -> str:
    return "An" if word[0] in "aeiou" else "A"
