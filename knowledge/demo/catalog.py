"""The fictional Acme shop: its teams, services and the vocabulary their changes and incidents use.

Everything here is declarative on purpose: the generator draws from these
lists, so a reader can see at a glance what the demo organisation looks like and
why an incident on ``checkout`` can be caused by a migration in ``billing-db``.
"""

from __future__ import annotations

from dataclasses import dataclass

REPO = "acme/platform"
ORG_HANDLE = "acme"


@dataclass(frozen=True)
class Topic:
    """One area of a service's code: a phrase people write in titles and the module stem behind it."""

    phrase: str
    stem: str
    area: str = ""


@dataclass(frozen=True)
class ConfigParam:
    """A tunable in a service's config; ``symptom`` is what the logs fill with when it is wrong."""

    name: str
    unit: str
    symptom: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class ServiceSpec:
    """A component of the shop as the catalog describes it, plus what its changes look like."""

    name: str
    team: str
    description: str
    language: str
    depends_on: tuple[str, ...]
    topics: tuple[Topic, ...]
    symptoms: tuple[str, ...]
    config_params: tuple[ConfigParam, ...] = ()
    flags: tuple[str, ...] = ()
    tables: tuple[tuple[str, tuple[str, ...]], ...] = ()
    libraries: tuple[str, ...] = ()
    extra_globs: tuple[str, ...] = ()
    root: str = ""

    @property
    def directory(self) -> str:
        return self.root or f"services/{self.name}"

    @property
    def globs(self) -> tuple[str, ...]:
        return (f"{self.directory}/**", *self.extra_globs)


@dataclass(frozen=True)
class TeamSpec:
    name: str
    size: int
    ticket_prefix: str

    @property
    def handle(self) -> str:
        return f"@{ORG_HANDLE}/{self.name}"


TEAMS: tuple[TeamSpec, ...] = (
    TeamSpec("web-team", 5, "WEB"),
    TeamSpec("edge-team", 3, "EDGE"),
    TeamSpec("identity-team", 3, "IDN"),
    TeamSpec("payments-team", 5, "PAY"),
    TeamSpec("checkout-team", 4, "CHK"),
    TeamSpec("catalog-team", 3, "CAT"),
    TeamSpec("discovery-team", 5, "DSC"),
    TeamSpec("engagement-team", 3, "ENG"),
    TeamSpec("media-team", 3, "MED"),
    TeamSpec("platform-team", 4, "PLAT"),
    TeamSpec("sre-team", 3, "SRE"),
    TeamSpec("dba-team", 2, "DBA"),
)

TEAMS_BY_NAME = {team.name: team for team in TEAMS}

FIRST_NAMES = (
    "Aisha", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiroshi", "Ines", "Jonas",
    "Kavya", "Lars", "Maya", "Nikolai", "Olu", "Priya", "Quentin", "Rosa", "Sanjay", "Tamar",
    "Uma", "Viktor", "Wen", "Ximena", "Yusuf", "Zoe", "Arjun", "Beatriz", "Carlos", "Dana",
    "Emeka", "Freya", "Gustavo", "Hana", "Ivan", "Julia", "Kenji", "Lucía", "Marek", "Nora",
    "Omar", "Paula", "Rahul", "Sofia", "Tomás", "Valentina", "Will", "Yara",
)
LAST_NAMES = (
    "Okafor", "Schmidt", "Nakamura", "Rossi", "Kowalski", "Haddad", "Lindqvist", "Moreau",
    "Patel", "García", "Novak", "O'Brien", "Fischer", "Tanaka", "Silva", "Ivanova", "Dubois",
    "Andersen", "Kaur", "Mensah", "Cohen", "Yilmaz", "Fernández", "Walsh", "Bauer", "Chen",
    "Horvat", "Eriksen", "Mbeki", "Costa", "Nguyen", "Popescu", "Larsen", "Romero", "Sato",
)

REGIONS = ("EU", "US-East", "US-West", "APAC", "UK", "DACH", "Nordics", "LATAM")

GENERIC_CONFIG = (
    ConfigParam("upstream timeout", "ms", "timeouts talking to upstreams", (200, 300, 500, 800, 1000, 2000)),
    ConfigParam("connection pool size", "", "'connection pool exhausted' errors", (5, 10, 20, 32, 50)),
    ConfigParam("retry attempts", "", "retry storms against dependencies", (1, 2, 3, 5)),
    ConfigParam("cache TTL", "s", "cache misses", (30, 60, 300, 600, 3600)),
    ConfigParam("worker concurrency", "", "queue backpressure warnings", (4, 8, 16, 32, 64)),
)

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="web-frontend",
        team="web-team",
        description="The React storefront: product pages, cart, checkout and account screens.",
        language="ts",
        depends_on=("api-gateway", "platform-config"),
        topics=(
            Topic("cart page", "CartPage", "checkout"),
            Topic("payment form", "PaymentForm", "checkout"),
            Topic("search box autocomplete", "SearchBox", "search"),
            Topic("product image gallery", "ProductGallery", "product"),
            Topic("login form", "LoginForm", "auth"),
            Topic("home feed", "HomeFeed", "feed"),
            Topic("locale detection", "localeDetection", "i18n"),
        ),
        symptoms=(
            "Storefront shows a blank page for {pct}% of sessions since {since}",
            "Product pages render without images on mobile Safari",
            "Users report the cart page spinner never finishes",
            "JS error rate on the storefront jumped to {pct}% after {since}",
            "Web frontend LCP regressed from 1.8s to {secs}s",
            "Prices show in the wrong currency for {region} visitors",
        ),
        config_params=(ConfigParam("bundle chunk size limit", "kB", "chunk load failures", (244, 500, 1000)),),
        flags=("new-cart-page", "lazy-gallery", "edge-rendering"),
        libraries=("react", "next", "axios", "@reduxjs/toolkit", "webpack", "date-fns"),
        extra_globs=("config/flags/web-frontend.yaml", "deploy/web-frontend/**"),
    ),
    ServiceSpec(
        name="api-gateway",
        team="edge-team",
        description="Public HTTP edge: routing, rate limiting and token checks in front of every backend.",
        language="go",
        depends_on=("auth", "checkout", "catalog", "search", "feed", "notifications", "platform-config"),
        topics=(
            Topic("rate limiter", "ratelimit"),
            Topic("route table", "routing"),
            Topic("token validation middleware", "authn"),
            Topic("CORS headers", "cors"),
            Topic("upstream proxy", "proxy"),
            Topic("retry budget", "retrybudget"),
        ),
        symptoms=(
            "Spike of 429 Too Many Requests at the API gateway since {since}",
            "Gateway returns 503 for {pct}% of requests from {region}",
            "API p99 latency up {x}x across all routes",
            "Mobile app requests failing with CORS errors",
            "Intermittent 504s on /v2 endpoints since {since}",
        ),
        config_params=(ConfigParam("per-client rate limit", " rps", "rate limit rejections", (50, 100, 200, 500)),),
        flags=("http3", "adaptive-rate-limit"),
        libraries=("google.golang.org/grpc", "github.com/go-chi/chi", "go.uber.org/zap", "golang.org/x/net"),
        extra_globs=("config/flags/api-gateway.yaml", "deploy/api-gateway/**"),
    ),
    ServiceSpec(
        name="auth",
        team="identity-team",
        description="Sign-in, sessions, OAuth and MFA; issues the JWTs every service verifies.",
        language="go",
        depends_on=("shared-libs", "platform-config"),
        topics=(
            Topic("session refresh", "sessions"),
            Topic("JWT signing keys", "tokens"),
            Topic("Google OAuth callback", "oauth"),
            Topic("MFA challenge", "mfa"),
            Topic("password reset emails", "passwords"),
            Topic("JWKS cache", "jwks"),
        ),
        symptoms=(
            "Users are being logged out every few minutes since {since}",
            "Login fails with 'invalid_grant' for Google sign-in",
            "Auth service 5xx rate at {pct}% after {since}",
            "MFA codes rejected for a subset of users in {region}",
            "Token validation errors across services since {since}",
        ),
        config_params=(ConfigParam("session lifetime", "m", "expired session errors", (15, 30, 60, 240)),),
        flags=("passkeys", "session-rotation"),
        tables=(("sessions", ("user_id", "expires_at", "device_id")), ("mfa_devices", ("user_id", "kind"))),
        libraries=("github.com/golang-jwt/jwt", "golang.org/x/oauth2", "github.com/redis/go-redis"),
        extra_globs=("config/flags/auth.yaml", "deploy/auth/**"),
    ),
    ServiceSpec(
        name="payments",
        team="payments-team",
        description="Charges, refunds and payment provider integrations (Stripe, Adyen).",
        language="python",
        depends_on=("billing-db", "auth", "shared-libs", "platform-config"),
        topics=(
            Topic("idempotency keys", "idempotency"),
            Topic("card tokenisation", "tokenize"),
            Topic("refund webhooks", "refunds"),
            Topic("3DS challenge flow", "three_ds"),
            Topic("currency rounding", "money"),
            Topic("Stripe client", "stripe_client"),
            Topic("ledger reconciliation", "ledger"),
        ),
        symptoms=(
            "Card payments failing with 'provider_error' for {pct}% of attempts",
            "Duplicate charges reported by customers since {since}",
            "Refunds stuck in pending since {since}",
            "Payment authorisation latency p99 at {secs}s",
            "3DS challenge never completes for {region} cards",
        ),
        config_params=(ConfigParam("Stripe client timeout", "ms", "Stripe timeouts", (800, 1500, 3000, 5000)),),
        flags=("async-refund-webhooks", "adyen-routing-eu"),
        libraries=("stripe", "sqlalchemy", "requests", "pydantic", "celery"),
        extra_globs=("config/flags/payments.yaml", "deploy/payments/**"),
    ),
    ServiceSpec(
        name="checkout",
        team="checkout-team",
        description="Cart, pricing, promo codes and order placement.",
        language="python",
        depends_on=("payments", "catalog", "auth", "notifications", "shared-libs", "platform-config"),
        topics=(
            Topic("cart totals", "cart"),
            Topic("promo code pricing", "promotions"),
            Topic("order state machine", "orders"),
            Topic("shipping quotes", "shipping"),
            Topic("VAT calculation", "tax"),
            Topic("stock reservation", "reservations"),
        ),
        symptoms=(
            "Checkout returns 502 for a subset of {region} users since {since}",
            "Orders stuck in 'pending' after payment confirmation",
            "Checkout conversion dropped {pct}% in the last hour",
            "Customers can't place orders: 'cart expired' error on submit",
            "Order totals off by a few cents for {region} customers",
            "Place-order button times out for {pct}% of users",
        ),
        config_params=(ConfigParam("payments call timeout", "ms", "timeouts calling payments", (500, 1000, 2000, 4000)),),
        flags=("new-promo-engine", "split-shipping"),
        tables=(("orders", ("status", "customer_id", "placed_at")), ("carts", ("expires_at", "currency"))),
        libraries=("sqlalchemy", "httpx", "pydantic", "redis", "tenacity"),
        extra_globs=("config/flags/checkout.yaml", "deploy/checkout/**"),
    ),
    ServiceSpec(
        name="catalog",
        team="catalog-team",
        description="Products, variants, prices and availability; the source of truth the shop sells from.",
        language="python",
        depends_on=("media", "shared-libs"),
        topics=(
            Topic("product API", "products"),
            Topic("variant sizes", "variants"),
            Topic("price feed import", "price_feed"),
            Topic("category tree", "categories"),
            Topic("availability cache", "availability"),
        ),
        symptoms=(
            "Product pages show 'out of stock' for items that are in stock",
            "Catalog API p95 latency up {x}x since {since}",
            "Prices on product pages are stale since the {since} import",
            "Category pages return 500 for {pct}% of requests",
        ),
        config_params=(ConfigParam("price import batch size", "", "import batch failures", (100, 500, 1000, 5000)),),
        flags=("variant-grouping", "availability-cache-v2"),
        tables=(("products", ("slug", "brand_id", "updated_at")), ("variants", ("sku", "size", "product_id"))),
        libraries=("sqlalchemy", "fastapi", "pydantic", "boto3"),
        extra_globs=("config/flags/catalog.yaml", "deploy/catalog/**"),
    ),
    ServiceSpec(
        name="search",
        team="discovery-team",
        description="Product search: indexing from the catalog, query parsing, ranking and autocomplete.",
        language="go",
        depends_on=("catalog", "shared-libs", "platform-config"),
        topics=(
            Topic("search indexer", "indexer"),
            Topic("ranking model", "ranking"),
            Topic("query parser", "queryparser"),
            Topic("synonym expansion", "synonyms"),
            Topic("autocomplete suggestions", "autocomplete"),
            Topic("shard routing", "shards"),
        ),
        symptoms=(
            "p99 latency on search doubled since {since}",
            "Search returns no results for queries with accents",
            "Search index lagging {n} minutes behind the catalog",
            "Autocomplete suggestions empty for {pct}% of queries",
            "Search relevance complaints: exact product names rank on page 3",
        ),
        config_params=(ConfigParam("shard fan-out timeout", "ms", "partial shard results", (50, 100, 200, 400)),),
        flags=("semantic-ranking-v2", "typo-tolerance"),
        libraries=("github.com/blevesearch/bleve", "google.golang.org/grpc", "go.uber.org/zap"),
        extra_globs=("config/flags/search.yaml", "deploy/search/**"),
    ),
    ServiceSpec(
        name="feed",
        team="discovery-team",
        description="The personalised home feed: candidate generation, ranking and pagination.",
        language="python",
        depends_on=("catalog", "search", "media", "shared-libs", "platform-config"),
        topics=(
            Topic("feed ranking", "ranker"),
            Topic("candidate generation", "candidates"),
            Topic("duplicate suppression", "dedupe"),
            Topic("feed pagination cursor", "pagination"),
            Topic("feed experiments", "experiments"),
        ),
        symptoms=(
            "Home feed shows the same items on every page",
            "Feed API error rate at {pct}% since {since}",
            "Home feed loads in {secs}s for app users",
            "Feed is empty for new users in {region}",
        ),
        config_params=(ConfigParam("candidate pool size", "", "slow candidate fetches", (200, 500, 1000, 2000)),),
        flags=("feed-ranker-v3", "video-cards"),
        libraries=("numpy", "lightgbm", "redis", "pydantic"),
        extra_globs=("config/flags/feed.yaml", "deploy/feed/**"),
    ),
    ServiceSpec(
        name="notifications",
        team="engagement-team",
        description="Email, push and SMS delivery with templates, digests and unsubscribe handling.",
        language="python",
        depends_on=("auth", "shared-libs"),
        topics=(
            Topic("email templates", "email"),
            Topic("push notifications", "push"),
            Topic("SMS provider failover", "sms"),
            Topic("daily digest emails", "digest"),
            Topic("unsubscribe links", "unsubscribe"),
            Topic("notification queue consumer", "consumer"),
        ),
        symptoms=(
            "Order confirmation emails delayed by {n} minutes",
            "Push notifications not delivered on Android since {since}",
            "Users receiving the daily digest twice",
            "Notification queue backlog at {n}k messages and growing",
        ),
        config_params=(ConfigParam("consumer prefetch", "", "unacked message warnings", (1, 10, 50, 200)),),
        flags=("push-batching", "sms-failover-twilio"),
        tables=(("deliveries", ("status", "channel", "sent_at")),),
        libraries=("celery", "jinja2", "boto3", "firebase-admin"),
        extra_globs=("config/flags/notifications.yaml", "deploy/notifications/**"),
    ),
    ServiceSpec(
        name="media",
        team="media-team",
        description="Image upload, resizing, thumbnails and CDN delivery for product media.",
        language="go",
        depends_on=("shared-libs",),
        topics=(
            Topic("image resizing", "resize"),
            Topic("CDN cache headers", "cdn"),
            Topic("upload signing", "upload"),
            Topic("thumbnail generation", "thumbnails"),
            Topic("S3 storage client", "storage"),
        ),
        symptoms=(
            "Product images return 404 from the CDN for new uploads",
            "Thumbnails blurry or missing since {since}",
            "Media service CPU pegged at 100%, image requests timing out",
            "CDN hit ratio dropped from 95% to {pct}%",
        ),
        config_params=(ConfigParam("resize worker count", "", "resize queue timeouts", (2, 4, 8, 16)),),
        flags=("avif-thumbnails", "cdn-shield"),
        libraries=("github.com/aws/aws-sdk-go-v2", "github.com/disintegration/imaging", "go.uber.org/zap"),
        extra_globs=("config/flags/media.yaml", "deploy/media/**"),
    ),
    ServiceSpec(
        name="billing-db",
        team="payments-team",
        description="The billing PostgreSQL schema: invoices, subscriptions, payment attempts and the ledger.",
        language="sql",
        depends_on=(),
        topics=(
            Topic("invoice queries", "invoices"),
            Topic("ledger views", "ledger"),
        ),
        symptoms=(
            "billing-db CPU at 95% and replication lag growing",
            "Lock waits on the billing database since {since}",
            "Invoice generation job failing with deadlocks",
        ),
        tables=(
            ("invoices", ("customer_id", "due_at", "status")),
            ("payment_attempts", ("invoice_id", "provider_ref", "created_at")),
            ("ledger_entries", ("account_id", "amount_minor", "posted_at")),
            ("subscriptions", ("plan_id", "renews_at", "customer_id")),
        ),
        root="db/billing",
    ),
    ServiceSpec(
        name="shared-libs",
        team="platform-team",
        description="Internal Python libraries every backend uses: HTTP client, observability, DB and cache helpers.",
        language="lib",
        depends_on=(),
        topics=(
            Topic("HTTP client retries", "retry", "http-client"),
            Topic("HTTP connection pooling", "pool", "http-client"),
            Topic("TLS verification", "tls", "http-client"),
            Topic("metrics exporter", "metrics", "observability"),
            Topic("trace propagation", "tracing", "observability"),
            Topic("structured logging", "logging", "observability"),
            Topic("DB session handling", "session", "db"),
            Topic("Redis cache client", "redis_cache", "cache"),
            Topic("money formatting", "currency", "money"),
            Topic("auth token verification", "verify", "auth-client"),
        ),
        symptoms=(),
        root="libs",
    ),
    ServiceSpec(
        name="platform-config",
        team="sre-team",
        description="Runtime configuration, feature flags, deploy manifests and CI for every service.",
        language="config",
        depends_on=(),
        topics=(
            Topic("global config", "global"),
            Topic("CI pipeline", "ci"),
            Topic("base Docker image", "base"),
        ),
        symptoms=(),
        extra_globs=("deploy/**", ".github/**", "build/**", "Makefile"),
        root="config",
    ),
)

SERVICES_BY_NAME = {service.name: service for service in SERVICES}

# CODEOWNERS beyond one rule per service: broad shared areas first, then nested
# overrides that later rules win, as real files grow.
SHARED_OWNERSHIP: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("*.sql", ("@acme/dba-team",)),
    ("/db/", ("@acme/dba-team",)),
    ("/config/flags/", ("@acme/sre-team",)),
)
OWNERSHIP_OVERRIDES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/libs/auth-client/", ("@acme/identity-team",)),
    ("/libs/money/", ("@acme/payments-team", "@acme/platform-team")),
    ("/services/checkout/src/checkout/tax.py", ("@acme/checkout-team", "@acme/payments-team")),
    ("/.github/workflows/deploy.yml", ("@acme/sre-team", "@acme/platform-team")),
)

SYMPTOM_DETAILS = (
    "Error rate is {pct}% against a baseline of 0.2%.",
    "Started around {since} UTC; nothing announced in #deploys.",
    "Support has {n} tickets so far.",
    "Dashboards show it on every pod, not one bad node.",
    "Roughly {pct}% of traffic affected, mostly {region}.",
    "Alert fired at {since} and has not recovered.",
    "No infra changes that we know of.",
    "Rollback not attempted yet.",
    "Happens on both web and app.",
)

# Words a responder writes when the logs point somewhere, by the kind of change that broke it.
KIND_HINTS = {
    "code": ("Logs show exceptions around {topic}.", "Stack traces point at {topic}."),
    "refactor": ("Errors seem to come from {topic}.", "Stack traces mention {stem}."),
    "config": ("Logs are full of {symptom}.", "Seeing {symptom} since the spike began."),
    "flag": ("Only some users are affected, as if something rolled out gradually ({flag}?).",),
    "migration": ("Slow queries and lock waits on the {table} table.", "DB shows long-running statements on {table}."),
    "dependency": ("Started after the last deploy; stack traces come from {library}.",),
    "shared": ("Errors mention {topic} in the shared client.",),
}

HARD_HINTS = (
    "Only some users are affected.",
    "Nothing obvious in our own service's deploys.",
    "Upstream calls look slower than usual.",
    "Started without a deploy of our own.",
)
