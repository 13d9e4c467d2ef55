"""Drawing the customers: companies with valid NITs and people, of every segment
(pure: a seeded random.Random in, plain values out)."""

from __future__ import annotations

import random
import unicodedata

from .mix import SEGMENTS

HEADS = ("Inversiones", "Comercializadora", "Distribuidora", "Transportes", "Constructora",
         "Industrias", "Agroindustrial", "Logística", "Laboratorios", "Textiles", "Alimentos",
         "Grupo Empresarial", "Importadora", "Servicios Integrales", "Tecnología", "Minera")
PLACES = ("Andina", "del Valle", "El Dorado", "La Sabana", "Santandereana", "del Caribe",
          "Antioqueña", "Los Andes", "del Pacífico", "Nevado", "Magdalena", "Tequendama",
          "Cafetera", "Boyacense", "Llanera", "Altamira", "San Jorge", "del Sinú", "Quimbaya",
          "Tayrona", "Guadalupe", "Chicamocha", "Cauca", "Orinoco")
LEGAL = ("S.A.S.", "S.A.", "Ltda.", "S.A.S.", "& Cía. S.A.S.")
FIRST = ("María", "José", "Luis", "Ana", "Carlos", "Luz", "Jorge", "Sandra", "Andrés",
         "Claudia", "Juan", "Diana", "Camilo", "Paola", "Alejandro", "Natalia")
LAST = ("Rodríguez", "Gómez", "González", "Martínez", "García", "López", "Hernández", "Ríos",
        "Ramírez", "Pérez", "Díaz", "Torres", "Rojas", "Vargas", "Moreno", "Ospina", "Zapata")


def nit(rng: random.Random) -> str:
    """A company NIT with its DIAN check digit."""
    base = rng.choice(("800", "830", "860", "890", "900", "901")) + f"{rng.randrange(10**6):06d}"
    weights = (3, 7, 13, 17, 19, 23, 29, 37, 41)
    rest = sum(int(d) * w for d, w in zip(reversed(base), weights, strict=True)) % 11
    return f"{base}-{rest if rest < 2 else 11 - rest}"


def _words(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in plain if c.isalnum() or c == " ").split()


def make_customers(rng, count: int, agents: list[str], managers: list[str]) -> list[dict]:
    """`count` customers of every segment, with unique NITs and emails."""
    segments = [s for s, spec in SEGMENTS.items() for _ in range(max(1, round(spec[0] * count)))]
    taken, customers = set(), []
    for index, segment in enumerate(segments[:count]):
        _, (low, high), _, sensitivity = SEGMENTS[segment]
        for _ in range(100):
            name, ident, email = _person(rng, index) if segment == "personas" else _company(rng)
            if not taken & {ident, email}:
                break
        taken |= {ident, email}
        customers.append({
            "id": ident, "name": name, "segment": segment, "value_rank": rng.randint(low, high),
            "sensitivity": rng.choices(("low", "medium", "high"), weights=sensitivity)[0],
            "n1_agent": rng.choice(agents), "email": email,
            "account_manager": None if segment == "personas" else rng.choice(managers)})
    return customers


def _company(rng) -> tuple[str, str, str]:
    head, place = rng.choice(HEADS), rng.choice(PLACES)
    mailbox = rng.choice(("tesoreria", "operaciones", "pagos", "contabilidad"))
    return (f"{head} {place} {rng.choice(LEGAL)}", nit(rng),
            f"{mailbox}@{'-'.join(_words(f'{head} {place}'))}.example")


def _person(rng, index: int) -> tuple[str, str, str]:
    first, last, second = rng.choice(FIRST), rng.choice(LAST), rng.choice(LAST)
    ident = str(rng.choice((10, 52, 79, 80)) * 10**8 + rng.randrange(10**8))  # a cédula
    return (f"{first} {last} {second}", ident,
            f"{'.'.join(_words(f'{first} {last}'))}{index}@correo.example")
