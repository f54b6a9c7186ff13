"""A shop like the demo's: thirteen services and six postmortems, as ``write_demo_wiki`` takes them."""

from __future__ import annotations

from typing import Any


def _service(name: str, owner: str, description: str, *depends_on: str) -> dict[str, Any]:
    return {"name": name, "owner": owner, "description": description, "depends_on": list(depends_on)}


SERVICES: list[dict[str, Any]] = [
    _service("web-frontend", "web-team", "The React storefront: product pages, cart, checkout and account screens.",
             "api-gateway", "platform-config"),
    _service("api-gateway", "edge-team", "Public HTTP edge: routing, rate limiting and token checks in front of every backend.",
             "auth", "checkout", "catalog", "search", "feed", "notifications"),
    _service("auth", "identity-team", "Sign-in, sessions, OAuth and MFA; issues the JWTs every service verifies.",
             "shared-libs"),
    _service("payments", "payments-team", "Charges, refunds and payment provider integrations (Stripe, Adyen).",
             "billing-db", "auth", "shared-libs"),
    _service("checkout", "checkout-team", "Cart, pricing, promo codes and order placement.",
             "payments", "catalog", "auth", "notifications"),
    _service("catalog", "catalog-team", "Products, variants, prices and availability; the source of truth the shop sells from.",
             "media", "shared-libs"),
    _service("search", "discovery-team", "Product search: indexing from the catalog, query parsing, ranking and autocomplete.",
             "catalog", "shared-libs"),
    _service("feed", "discovery-team", "The personalised home feed: candidate generation, ranking and pagination.",
             "catalog", "search", "media"),
    _service("notifications", "engagement-team", "Email, push and SMS delivery with templates, digests and unsubscribe handling.",
             "auth", "shared-libs"),
    _service("media", "media-team", "Image upload, resizing, thumbnails and CDN delivery for product media.",
             "shared-libs"),
    _service("billing-db", "dba-team", "The billing PostgreSQL schema: invoices, subscriptions, payment attempts and the ledger."),
    _service("shared-libs", "platform-team", "Internal Python libraries every backend uses: HTTP client, observability, DB and cache helpers."),
    _service("platform-config", "sre-team", "Runtime configuration, feature flags, deploy manifests and CI for every service."),
]  # fmt: skip

POSTMORTEMS: list[dict[str, Any]] = [
    {
        "incident_id": "INC-2041",
        "title": "Checkout spinner never finishes",
        "service": "checkout",
        "started_at": "2024-03-12T14:05:00+00:00",
        "symptom": "Users report the cart page spinner never finishes",
        "root_cause_change_id": "9f2c4e1a7b3d5f60718293a4b5c6d7e8f9012345",
        "root_cause_title": "checkout: lower upstream timeout for pricing calls to 200ms",
    },
    {
        "incident_id": "INC-2077",
        "title": "Card payments timing out at Adyen",
        "service": "payments",
        "started_at": "2024-04-02T08:40:00+00:00",
        "symptom": "Card payments fail with provider timeouts for EU customers",
        "root_cause_change_id": "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678",
        "root_cause_title": "payments: reuse HTTP connections to the Adyen client",
    },
    {
        "incident_id": "INC-2110",
        "title": "Sign-in loop after key rotation",
        "service": "auth",
        "started_at": "2024-05-19T22:15:00+00:00",
        "symptom": "Users are sent back to the login screen right after signing in",
        "root_cause_change_id": "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",
        "root_cause_title": "auth: rotate JWT signing keys every 24 hours",
    },
    {
        "incident_id": "INC-2153",
        "title": "Search results missing new products",
        "service": "search",
        "started_at": "2024-06-07T10:30:00+00:00",
        "symptom": "Newly added products do not appear in search results for hours",
        "root_cause_change_id": "77aa88bb99cc00dd11ee22ff33aa44bb55cc66dd",
        "root_cause_title": "search: batch catalog updates into bulk requests of 5000",
    },
    {
        "incident_id": "INC-2189",
        "title": "Order confirmation emails delayed",
        "service": "notifications",
        "started_at": "2024-07-23T06:50:00+00:00",
        "symptom": "Order confirmation emails arrive two hours late",
        "root_cause_change_id": "0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ff",
        "root_cause_title": "notifications: single consumer for the email queue",
    },
    {
        "incident_id": "INC-2230",
        "title": "Billing database connections exhausted",
        "service": "billing-db",
        "started_at": "2024-08-30T16:20:00+00:00",
        "symptom": "Invoices fail to save with too many clients already errors",
        "root_cause_change_id": "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef",
        "root_cause_title": "billing-db: raise statement timeout for invoice exports",
    },
]
