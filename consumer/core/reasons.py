"""Reason codes of rejected records (CONTRACT §1) and the outcomes of valid ones."""

EMPTY_PAYLOAD = "empty_payload"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_ORDER_ID = "missing_order_id"
INVALID_CREATED_AT = "invalid_created_at"
INVALID_ITEM = "invalid_item"
INVALID_AMOUNT = "invalid_amount"
INVALID_FIELD = "invalid_field"
CONFLICTING_DUPLICATE = "conflicting_duplicate"
REJECT_REASONS = (
    EMPTY_PAYLOAD,
    INVALID_JSON,
    NOT_AN_OBJECT,
    MISSING_ORDER_ID,
    INVALID_CREATED_AT,
    INVALID_ITEM,
    INVALID_AMOUNT,
    INVALID_FIELD,
    CONFLICTING_DUPLICATE,
)

LOADED = "loaded"
DUPLICATE = "duplicate"
