"""A small demo catalog, so a fresh ``make run`` has something to show.

Loaded once: when the database holds any product at all, nothing is added, so
a developer's own edits survive restarts. Everything is written in one
transaction through the catalog repository (with its validation and rules),
so an interrupted first run leaves no half catalog behind to block the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.cache import Cache
from storefront.adapters.database import UnitOfWork
from storefront.catalog import repository, service
from storefront.catalog.domain import NewCategory, NewProduct, ProductQuery

# category -> (sku, name, price, description)
DEMO_CATALOG: dict[str, list[tuple[str, str, str, str]]] = {
    "Coffee": [
        ("COF-ETH-250", "Ethiopia Yirgacheffe, 250 g", "14.50", "Washed; jasmine and bergamot."),
        ("COF-COL-250", "Colombia Huila, 250 g", "12.90", "Caramel, red apple, milk chocolate."),
        ("COF-BRA-1000", "Brazil Cerrado, 1 kg", "34.00", "Nutty, low acidity; for espresso."),
        ("COF-KEN-250", "Kenya Nyeri AA, 250 g", "16.80", "Blackcurrant, grapefruit, bright."),
        ("COF-DEC-250", "Swiss Water Decaf, 250 g", "13.40", "Chemical-free decaf; cocoa, toffee."),
    ],
    "Tea": [
        ("TEA-SEN-100", "Sencha Green Tea, 100 g", "11.20", "Steamed green tea from Shizuoka."),
        ("TEA-ASS-250", "Assam Breakfast Tea, 250 g", "9.60", "Malty black tea; takes milk well."),
        ("TEA-EGR-100", "Earl Grey Tea, 100 g", "8.90", "Black tea, bergamot, cornflower."),
        ("TEA-CHA-50", "Matcha Green Tea, 50 g", "24.00", "Stone-ground tencha from Uji."),
    ],
    "Brewing Gear": [
        ("GEAR-V60-02", "Ceramic Pour-Over Dripper 02", "22.00", "Spiral ribs, one large hole."),
        ("GEAR-KET-GN", "Gooseneck Kettle 0.9 l", "49.00", "Stainless steel, lid thermometer."),
        ("GEAR-GRD-HND", "Hand Grinder, Steel Burrs", "89.00", "38 mm conical burrs, 30 g hopper."),
        ("GEAR-SCL-01", "Brew Scale with Timer", "35.50", "0.1 g resolution, USB-C charging."),
    ],
    "Accessories": [
        ("ACC-FLT-100", "Paper Filters 02, 100 pcs", "6.50", "Unbleached, fits 02 drippers."),
        ("ACC-MUG-350", "Stoneware Mug 350 ml", "18.00", "Hand-glazed; dishwasher safe."),
        ("ACC-CAN-500", "Airtight Coffee Canister", "27.90", "One-way valve keeps beans fresh."),
    ],
}


@dataclass(frozen=True)
class DemoLoad:
    created_products: int
    created_categories: int
    sample_product_id: UUID | None  # for the banner's curl example


async def load_demo_catalog(engine: AsyncEngine, cache: Cache) -> DemoLoad:
    """Add the demo catalog unless the database already holds any product."""
    async with UnitOfWork(engine) as uow:
        existing = await repository.list_products(uow.connection, ProductQuery(limit=1))
        if existing:
            return DemoLoad(0, 0, existing[0].id)
        categories = {c.name: c.id for c in await repository.list_categories(uow.connection)}
        created_categories = 0
        created: list[UUID] = []
        for category_name, items in DEMO_CATALOG.items():
            if category_name not in categories:
                new = NewCategory(name=category_name)
                categories[category_name] = (await repository.add_category(uow.connection, new)).id
                created_categories += 1
            for sku, name, price, description in items:
                product = NewProduct(
                    sku=sku,
                    name=name,
                    price=Decimal(price),
                    description=description,
                    currency="EUR",
                    category_id=categories[category_name],
                )
                created.append((await repository.add_product(uow.connection, product)).id)
        await uow.commit()
    # New ids have no cached entries, but list pages cached before (say, an
    # empty catalog) must go, as after any write.
    await cache.bump_namespace(service.PRODUCT_LISTS)
    return DemoLoad(len(created), created_categories, created[0])


__all__ = ["DEMO_CATALOG", "DemoLoad", "load_demo_catalog"]
