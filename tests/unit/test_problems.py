from storefront.web.problems import field_errors, validation_problem


def test_field_errors_strip_the_location_kind() -> None:
    errors = field_errors(
        [
            {"loc": ("body", "price"), "msg": "must be a decimal string"},
            {"loc": ("query", "limit"), "msg": "Input should be greater than or equal to 1"},
            {"loc": ("path", "product_id"), "msg": "Input should be a valid UUID"},
            {"loc": ("body", "items", 0, "quantity"), "msg": "too big"},
            {"loc": ("body",), "msg": "Field required"},
        ]
    )
    assert [error["field"] for error in errors] == [
        "price",
        "limit",
        "product_id",
        "items.0.quantity",
        "body",
    ]


def test_validation_problem_lists_every_field_in_the_detail() -> None:
    response = validation_problem(
        [{"field": "sku", "reason": "Field required"}, {"field": "price", "reason": "too low"}]
    )
    assert response.status_code == 422
    assert response.media_type == "application/problem+json"
    assert b'"detail":"sku: Field required; price: too low"' in response.body
