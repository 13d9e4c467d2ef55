"""The dataset's mix: shares of the case paths, products, delays, segments and volumes."""

from __future__ import annotations

from datetime import timedelta

from app.domain.calendar import BusinessCalendar

# --- the mix: shares of all cases ---------------------------------------------------
FIRST_CONTACT = 0.35  # resolved by N1 at first contact (an N1-resolvable typology)
MISROUTE = 0.10       # filed under the wrong product: N2 returns it, the right group resolves
INCIDENT = 0.12       # N2 reclassifies it as an incident: N3 fixes, N2 confirms
#                       the rest (~43%; ~53% with the misroutes) is resolved by N2
INFO_REQUEST = 0.08   # N1 first asks the customer, who answers 1-24 business hours later
REOPEN = 0.03         # the customer reopens it inside the 5-business-day window
REINCIDENCE = 0.08    # same customer, product and typology as a case of the last 30 days
IMPACTS = {"one_user": 80, "several_users": 15, "whole_service": 5}
CHANNELS = {"email": 40, "phone": 25, "portal": 20, "chat": 15}
# product: (weight, target mean resolution in business hours; the SLAs are in sla.dmn)
PRODUCTS = {
    "Pagos": (24, 15.0),            # thesis: 1.5 days against a 1-day SLA
    "Sucursal Digital": (20, 9.2),  # thesis: 9.2 hours against 8
    "Recaudos": (11, 14.0), "Conexión Directa": (9, 7.0), "Depósitos": (8, 24.0),
    "Tarjetas": (8, 12.0), "Adquirencia": (6, 13.0), "Pasarela de Pagos": (6, 12.0),
    "Swift": (5, 16.0), "Transporte de Efectivo": (3, 15.0),
}
# delays in business minutes: (median, sigma) of a lognormal, clipped to [low, high]
N1_DELAY = (40, 0.9, 3, 480)       # minutes to a few hours
N2_DELAY = (300, 0.8, 30, 3000)    # hours to 1-3 days, times the product's pace (n2_pace)
N3_DELAY = (1200, 0.5, 600, 3000)  # 1-5 days
CONFIRM_DELAY = (60, 0.6, 10, 600)
ANSWER_MINUTES = (60, 1440)        # the customer answers after 1-24 business hours
REOPEN_MINUTES = (120, 2400)       # the customer reopens after 2 h - 4 days (window: 5)
# segment: (share of customers, value ranks, case activity, sensitivity weights low/med/high)
SEGMENTS = {
    "personas": (0.15, (60, 100), 0.6, (6, 3, 1)),
    "pyme": (0.30, (40, 90), 1.0, (5, 4, 1)),
    "empresas": (0.33, (15, 60), 1.8, (3, 5, 2)),
    "corporativo": (0.22, (1, 30), 3.0, (1, 4, 5)),
}
CUSTOMERS, POSVENTA, MANAGERS, PASSWORD = 300, 6, 4, "demo1234"
HOURS = (0, 0, 0, 0, 0, 1, 2, 4, 9, 12, 13, 11, 6, 7, 11, 11, 9, 6, 3, 2, 1, 1, 0, 0)  # Bogota
WEEKDAYS = (1.2, 1.1, 1.0, 1.0, 0.9)  # Monday to Friday
TICK = timedelta(hours=1)
CALENDAR = BusinessCalendar.default()
