"""Reference data (products, typologies) and customers."""

from __future__ import annotations

from app.services import customers, reference

from . import crm_schemas as schemas
from .auth import actor, context
from .base import Blueprint

blp = Blueprint("crm", __name__, description="Products, typologies and customers")


@blp.route("/products", methods=["GET"])
@blp.response(200, schemas.ProductList)
def list_products():
    """Products by name, with their typologies and their routed N2/N3 groups."""
    actor()
    return reference.list_products(context())


@blp.route("/products", methods=["POST"])
@blp.arguments(schemas.ProductCreate)
@blp.response(201, schemas.ProductItem)
def create_product(body):
    """Add a product with its typologies (designers)."""
    return reference.create_product(context(), actor(), body)


@blp.route("/products/<name>", methods=["PATCH"])
@blp.arguments(schemas.ProductPatch)
@blp.response(200, schemas.ProductItem)
def update_product(body, name):
    """Rename, (de)activate, replace or add typologies (designers)."""
    return reference.update_product(context(), actor(), name, body)


@blp.route("/reference", methods=["PUT"])
@blp.arguments(schemas.Reference)
@blp.response(200, schemas.ReferenceLoaded)
def load_reference(body):
    """Create or update every product and typology of the document (designers)."""
    return reference.load_reference(context(), actor(), body)


@blp.route("/customers", methods=["POST"])
@blp.arguments(schemas.CustomerCreate)
@blp.response(201, schemas.CustomerItem)
@blp.alt_response(409, description="A customer with this NIT exists")
def create_customer(body):
    """Register a customer (operators)."""
    return customers.create(context(), actor(), body)


@blp.route("/customers", methods=["GET"])
@blp.arguments(schemas.CustomerQuery, location="query")
@blp.response(200, schemas.CustomerList)
def search_customers(query):
    """Customers by name; filter by segment, or by the start of the name or NIT."""
    return customers.search(context(), actor(), **query)


@blp.route("/customers/<customer_id>", methods=["GET"])
@blp.response(200, schemas.CustomerDetail)
def get_customer(customer_id):
    """A customer with their latest cases, newest first."""
    return customers.get(context(), actor(), customer_id)


@blp.route("/customers/<customer_id>", methods=["PATCH"])
@blp.arguments(schemas.CustomerPatch)
@blp.response(200, schemas.CustomerItem)
def update_customer(body, customer_id):
    """Change some fields of a customer (operators)."""
    return customers.patch(context(), actor(), customer_id, body)
