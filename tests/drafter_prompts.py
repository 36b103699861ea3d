"""A prompt set for the offline drafter: realistic prompts across ten domains, each with the
columns, types and constraints it means — written from the prompt, not from the drafter's output.

Each expected column is a name and a short spec, tokens separated by spaces:

- the type first, with an optional semantic type: `float`, `string/email`, `*/id` (an id of any
  type), `num` (integer or float), `date|datetime` (either);
- `a..b`: min a and max b; `min=a`, `max=b`; `>0` (min above 0), `>=0` (min at least 0);
- `normal(m,s)`: a normal distribution of mean m and std s;
- `cur=EUR`, `unit=celsius`; `cats=a|b|c` (the categories, in order; `~` for a space in a
  value); `has=x` (x among them);
- `pattern` (a regex the values match); `card=n` (an integer id of n distinct values: 1..n).

A prompt is drafted exactly right when the draft has exactly the expected columns, in order,
each right, and no warning; `score` counts both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from synth_pipelines.core.tabular.schema import Column, TableSchema


@dataclass(frozen=True)
class Case:
    domain: str
    prompt: str
    columns: dict[str, str]


DOMAINS = (
    "retail", "finance", "health", "iot", "hr", "logistics", "education", "telecom", "travel",
    "saas",
)  # fmt: skip

CASES = [
    # retail
    Case("retail", "an e-commerce orders table: order id, customer email, total price in EUR, "
         "shipping country, order status pending/shipped/delivered/returned",
         {"order_id": "*/id", "customer_email": "string/email", "total_price": "float >0 cur=EUR",
          "shipping_country": "string/country",
          "order_status": "category cats=pending|shipped|delivered|returned"}),
    Case("retail", "Generate 5k products with SKU, product name, category, unit price in USD, "
         "stock quantity, is_active",
         {"sku": "string pattern", "product_name": "string", "category": "category",
          "unit_price": "float >0 cur=USD", "stock_quantity": "integer >=0",
          "is_active": "boolean"}),
    Case("retail", "weekly sales across 50 stores with week start date, revenue in GBP, footfall "
         "count, returns count",
         {"store_id": "integer/id card=50", "week_start_date": "date",
          "revenue": "float >0 cur=GBP", "footfall_count": "integer >=0",
          "returns_count": "integer >=0"}),
    Case("retail", "customer reviews: review id, product id, rating between 1 and 5, review text, "
         "review date, verified purchase (yes/no)",
         {"review_id": "*/id", "product_id": "*/id", "rating": "integer 1..5",
          "review_text": "string", "review_date": "date", "verified_purchase": "boolean"}),
    Case("retail", "10,000 shopping cart events with session id, user id, event type one of view, "
         "add_to_cart, checkout or purchase, cart value in EUR, timestamp",
         {"session_id": "*/id", "user_id": "*/id",
          "event_type": "category cats=view|add_to_cart|checkout|purchase",
          "cart_value": "float >=0 cur=EUR", "timestamp": "datetime"}),
    Case("retail", "loyalty members with member id, full name, email, tier (bronze, silver, gold), "
         "points balance at least 0, join date",
         {"member_id": "*/id", "full_name": "string/full_name", "email": "string/email",
          "tier": "category cats=bronze|silver|gold", "points_balance": "integer >=0",
          "join_date": "date"}),
    Case("retail", "grocery basket lines: basket id, product name, quantity 1-10, unit price in "
         "EUR, discount percent at most 50, organic (yes/no)",
         {"basket_id": "*/id", "product_name": "string", "quantity": "integer 1..10",
          "unit_price": "float >0 cur=EUR", "discount_percent": "float 0..50",
          "organic": "boolean"}),
    # finance
    Case("finance", "Generate 10k financial transactions with user ID, amount, currency, and "
         "timestamp",
         {"user_id": "*/id", "amount": "float >0", "currency": "string/currency_code",
          "timestamp": "datetime"}),
    Case("finance", "bank accounts: account number, IBAN, account holder name, account type "
         "checking/savings, balance in EUR, opened on",
         {"account_number": "*/id", "iban": "string/iban",
          "account_holder_name": "string/full_name",
          "account_type": "category cats=checking|savings", "balance": "float cur=EUR",
          "opened_on": "date"}),
    Case("finance", "loan applications for 2000 applicants: applicant id, annual income in USD, "
         "loan amount between 1000 and 50000, interest rate percent, credit score, approved",
         {"applicant_id": "integer/id card=2000", "annual_income": "float >0 cur=USD",
          "loan_amount": "num 1000..50000", "interest_rate_percent": "float unit=percent",
          "credit_score": "integer", "approved": "boolean"}),
    Case("finance", "credit card transactions with card number, merchant name, merchant category, "
         "amount in GBP, transaction time, is fraud",
         {"card_number": "string pattern", "merchant_name": "string/company",
          "merchant_category": "category", "amount": "float >0 cur=GBP",
          "transaction_time": "datetime", "is_fraud": "boolean"}),
    Case("finance", "daily stock prices: ticker, trading date, open price, close price, volume",
         {"ticker": "string pattern", "trading_date": "date", "open_price": "float >0",
          "close_price": "float >0", "volume": "integer >=0"}),
    Case("finance", "monthly invoices: invoice number, customer id, issue date, due date, amount "
         "due in EUR, status paid/unpaid/overdue",
         {"invoice_number": "*/id", "customer_id": "*/id", "issue_date": "date",
          "due_date": "date", "amount_due": "float >0 cur=EUR",
          "status": "category cats=paid|unpaid|overdue"}),
    Case("finance", "insurance claims with claim id, policy number, claim amount, claim date, "
         "claim type (auto, home, health), status open, approved or rejected",
         {"claim_id": "*/id", "policy_number": "*/id", "claim_amount": "float >0",
          "claim_date": "date", "claim_type": "category cats=auto|home|health",
          "status": "category cats=open|approved|rejected"}),
    Case("finance", "crypto trades: trade id, wallet address, coin BTC/ETH/SOL, quantity, price in "
         "USD, executed at, side buy or sell",
         {"trade_id": "*/id", "wallet_address": "string pattern",
          "coin": "category cats=BTC|ETH|SOL", "quantity": "num >0",
          "price": "float >0 cur=USD", "executed_at": "datetime",
          "side": "category cats=buy|sell"}),
    # health
    Case("health", "patients with patient id, date of birth, sex, blood type, diagnosis code, "
         "admission date",
         {"patient_id": "*/id", "date_of_birth": "date", "sex": "category",
          "blood_type": "category", "diagnosis_code": "string pattern",
          "admission_date": "date"}),
    Case("health", "vital signs for 100 patients: patient id, measured at, heart rate bpm, "
         "systolic blood pressure mmHg, body temperature celsius, oxygen saturation percent",
         {"patient_id": "integer/id card=100", "measured_at": "datetime",
          "heart_rate_bpm": "num unit=bpm", "systolic_blood_pressure_mmhg": "num unit=mmHg",
          "body_temperature_celsius": "float unit=celsius",
          "oxygen_saturation_percent": "float unit=percent"}),
    Case("health", "prescriptions: prescription id, patient id, drug name, dosage mg, refills "
         "from 0 to 5, prescribed on",
         {"prescription_id": "*/id", "patient_id": "*/id", "drug_name": "string",
          "dosage_mg": "num unit=mg", "refills": "integer 0..5", "prescribed_on": "date"}),
    Case("health", "hospital appointments with appointment id, doctor name, department, "
         "appointment time, duration in minutes, no show (true/false)",
         {"appointment_id": "*/id", "doctor_name": "string/full_name", "department": "category",
          "appointment_time": "datetime", "duration": "num unit=minutes",
          "no_show": "boolean"}),
    Case("health", "lab results: sample id, patient id, test name, glucose mg/dL around 100 with "
         "std 15, collected at",
         {"sample_id": "*/id", "patient_id": "*/id", "test_name": "string",
          "glucose": "float normal(100,15) unit=mg/dL", "collected_at": "datetime"}),
    Case("health", "clinical trial participants for 12 sites: participant id, age between 18 and "
         "75, arm placebo/treatment, enrolled on, weight in kg",
         {"site_id": "integer/id card=12", "participant_id": "*/id", "age": "integer 18..75",
          "arm": "category cats=placebo|treatment", "enrolled_on": "date",
          "weight": "num unit=kg"}),
    Case("health", "pharmacy sales across 15 pharmacies: sale id, drug name, units sold, unit "
         "price in GBP, sold at, prescription required",
         {"pharmacy_id": "integer/id card=15", "sale_id": "*/id", "drug_name": "string",
          "units_sold": "integer >=0", "unit_price": "float >0 cur=GBP",
          "sold_at": "datetime", "prescription_required": "boolean"}),
    # iot
    Case("iot", "IoT sensor readings for 20 devices: device id, timestamp, temperature celsius "
         "around 21 with std 2, humidity percent, battery voltage",
         {"device_id": "integer/id card=20", "timestamp": "datetime",
          "temperature_celsius": "float normal(21,2) unit=celsius",
          "humidity_percent": "float 0..100 unit=percent",
          "battery_voltage": "float 3..4.2 unit=V"}),
    Case("iot", "smart meter data for 500 households, every 15 minutes: household id, timestamp, "
         "energy consumption kWh, voltage, tariff peak/off-peak",
         {"household_id": "integer/id card=500", "timestamp": "datetime",
          "energy_consumption_kwh": "float >=0 unit=kWh", "voltage": "float unit=V",
          "tariff": "category cats=peak|off-peak"}),
    Case("iot", "GPS pings from 200 vehicles: vehicle id, recorded at, latitude, longitude, speed "
         "km/h, fuel level percent",
         {"vehicle_id": "integer/id card=200", "recorded_at": "datetime",
          "latitude": "float -90..90", "longitude": "float -180..180",
          "speed": "float >=0 unit=km/h", "fuel_level_percent": "float 0..100 unit=percent"}),
    Case("iot", "industrial machine telemetry: machine id, timestamp, vibration mm/s, rpm, motor "
         "temperature celsius, status running/idle/fault",
         {"machine_id": "*/id", "timestamp": "datetime", "vibration": "float >=0 unit=mm/s",
          "rpm": "num >=0 unit=rpm", "motor_temperature_celsius": "float unit=celsius",
          "status": "category cats=running|idle|fault"}),
    Case("iot", "air quality sensors across 40 cities: sensor id, reading time, co2 ppm, noise "
         "level dB, humidity percent",
         {"city_id": "integer/id card=40", "sensor_id": "*/id", "reading_time": "datetime",
          "co2_ppm": "num unit=ppm", "noise_level_db": "num unit=dB",
          "humidity_percent": "float 0..100 unit=percent"}),
    Case("iot", "fitness tracker data for 1000 users: user id, date, steps, heart rate bpm, sleep "
         "hours, calories burned",
         {"user_id": "integer/id card=1000", "date": "date", "steps": "integer >=0",
          "heart_rate_bpm": "num unit=bpm", "sleep_hours": "num unit=hours",
          "calories_burned": "num >=0"}),
    Case("iot", "cold chain temperature log: shipment id, logged at, temperature celsius between "
         "2 and 8, door open (yes/no)",
         {"shipment_id": "*/id", "logged_at": "datetime",
          "temperature_celsius": "float 2..8 unit=celsius", "door_open": "boolean"}),
    # hr
    Case("hr", "I need a dataset of 5,000 employees with the following columns: employee ID, first "
         "name, last name, E-mail address, department, salary, hire date, is_manager",
         {"employee_id": "*/id", "first_name": "string/first_name",
          "last_name": "string/last_name", "email_address": "string/email",
          "department": "category", "salary": "float >0", "hire_date": "date",
          "is_manager": "boolean"}),
    Case("hr", "job applicants: applicant id, full name, email, position applied, years of "
         "experience from 0 to 30, expected salary in EUR, application status "
         "screening/interview/offer/rejected",
         {"applicant_id": "*/id", "full_name": "string/full_name", "email": "string/email",
          "position_applied": "string/job", "years_of_experience": "integer 0..30",
          "expected_salary": "float >0 cur=EUR",
          "application_status": "category cats=screening|interview|offer|rejected"}),
    Case("hr", "payroll for 300 employees: employee id, pay period end date, gross pay in USD, tax "
         "withheld, net pay, overtime hours",
         {"employee_id": "integer/id card=300", "pay_period_end_date": "date",
          "gross_pay": "float >0 cur=USD", "tax_withheld": "float >0", "net_pay": "float >0",
          "overtime_hours": "num >=0 unit=hours"}),
    Case("hr", "employee engagement survey: response id, department, tenure years, satisfaction "
         "score between 1 and 10, would recommend (yes/no), comments",
         {"response_id": "*/id", "department": "category", "tenure_years": "num >=0",
          "satisfaction_score": "integer 1..10", "would_recommend": "boolean",
          "comments": "string/sentence"}),
    Case("hr", "time off requests: request id, employee id, leave type vacation/sick/parental, "
         "start date, end date, days requested at most 30",
         {"request_id": "*/id", "employee_id": "*/id",
          "leave_type": "category cats=vacation|sick|parental", "start_date": "date",
          "end_date": "date", "days_requested": "integer max=30"}),
    Case("hr", "performance reviews with review id, employee id, reviewer name, rating (1-5), "
         "promotion recommended",
         {"review_id": "*/id", "employee_id": "*/id", "reviewer_name": "string/full_name",
          "rating": "integer 1..5", "promotion_recommended": "boolean"}),
    # logistics
    Case("logistics", "shipments: tracking number, origin city, destination city, weight in kg, "
         "shipped at, delivered at, carrier (DHL, UPS, FedEx)",
         {"tracking_number": "string pattern", "origin_city": "string/city",
          "destination_city": "string/city", "weight": "float >0 unit=kg",
          "shipped_at": "datetime", "delivered_at": "datetime",
          "carrier": "category cats=DHL|UPS|FedEx"}),
    Case("logistics", "delivery routes for 25 drivers: driver id, route date, stops count between "
         "5 and 40, distance km, on time (true/false)",
         {"driver_id": "integer/id card=25", "route_date": "date",
          "stops_count": "integer 5..40", "distance_km": "float >=0 unit=km",
          "on_time": "boolean"}),
    Case("logistics", "warehouse inventory: SKU, warehouse code, bin location, quantity on hand at "
         "least 0, reorder point, last counted at",
         {"sku": "string pattern", "warehouse_code": "string", "bin_location": "string",
          "quantity_on_hand": "integer >=0", "reorder_point": "integer >=0",
          "last_counted_at": "datetime"}),
    Case("logistics", "freight containers: container number, vessel name, port of loading, port of "
         "discharge, gross weight kg, status loaded/in transit/discharged",
         {"container_number": "string pattern", "vessel_name": "string",
          "port_of_loading": "string", "port_of_discharge": "string",
          "gross_weight_kg": "float >0 unit=kg",
          "status": "category cats=loaded|in~transit|discharged"}),
    Case("logistics", "fleet maintenance records: vehicle id, license plate, service date, mileage "
         "in miles, cost in USD, service type oil change, tire rotation or brake repair",
         {"vehicle_id": "*/id", "license_plate": "string pattern", "service_date": "date",
          "mileage": "num >=0 unit=miles", "cost": "float >0 cur=USD",
          "service_type": "category cats=oil~change|tire~rotation|brake~repair"}),
    Case("logistics", "parcel lockers across 80 locations with locker id, size S/M/L, occupied, "
         "last opened at",
         {"location_id": "integer/id card=80", "locker_id": "*/id",
          "size": "category cats=S|M|L", "occupied": "boolean", "last_opened_at": "datetime"}),
    # education
    Case("education", "students: student id, first name, last name, date of birth, grade level "
         "from 1 to 12, GPA between 0 and 4",
         {"student_id": "*/id", "first_name": "string/first_name",
          "last_name": "string/last_name", "date_of_birth": "date",
          "grade_level": "integer 1..12", "gpa": "float 0..4"}),
    Case("education", "course enrollments: enrollment id, student id, course code, semester "
         "fall/spring/summer, final grade A/B/C/D/F, enrolled at",
         {"enrollment_id": "*/id", "student_id": "*/id", "course_code": "string pattern",
          "semester": "category cats=fall|spring|summer",
          "final_grade": "category cats=A|B|C|D|F", "enrolled_at": "datetime"}),
    Case("education", "exam results for 40 classes: student id, exam date, subject math, science "
         "or english, score between 0 and 100, passed",
         {"class_id": "integer/id card=40", "student_id": "*/id", "exam_date": "date",
          "subject": "category cats=math|science|english", "score": "integer 0..100",
          "passed": "boolean"}),
    Case("education", "online course activity: user id, course id, video minutes watched, quiz "
         "attempts, completion percent, last active at",
         {"user_id": "*/id", "course_id": "*/id", "video_minutes_watched": "num >=0",
          "quiz_attempts": "integer >=0", "completion_percent": "float 0..100 unit=percent",
          "last_active_at": "datetime"}),
    Case("education", "school attendance: student id, date, status present/absent/late, minutes "
         "late at most 60",
         {"student_id": "*/id", "date": "date",
          "status": "category cats=present|absent|late", "minutes_late": "num max=60"}),
    Case("education", "teachers with teacher id, full name, subject, years of experience, salary "
         "in EUR, certified",
         {"teacher_id": "*/id", "full_name": "string/full_name", "subject": "category",
          "years_of_experience": "integer >=0", "salary": "float >0 cur=EUR",
          "certified": "boolean"}),
    # telecom
    Case("telecom", "call detail records: caller number, callee number, call start time, duration "
         "in seconds, call type (voice, sms, data), cell tower id",
         {"caller_number": "string/phone", "callee_number": "string/phone",
          "call_start_time": "datetime", "duration": "num >=0 unit=seconds",
          "call_type": "category cats=voice|sms|data", "cell_tower_id": "*/id"}),
    Case("telecom", "mobile subscribers: subscriber id, msisdn, plan prepaid/postpaid, monthly "
         "data usage GB, monthly bill in EUR, churned",
         {"subscriber_id": "*/id", "msisdn": "string/phone",
          "plan": "category cats=prepaid|postpaid", "monthly_data_usage_gb": "float >=0 unit=GB",
          "monthly_bill": "float >0 cur=EUR", "churned": "boolean"}),
    Case("telecom", "network latency measurements for 60 cell towers: tower id, measured at, "
         "latency ms around 40 with std 10, packet loss percent, signal strength dBm",
         {"tower_id": "integer/id card=60", "measured_at": "datetime",
          "latency_ms": "float normal(40,10) unit=ms",
          "packet_loss_percent": "float 0..100 unit=percent",
          "signal_strength_dbm": "float unit=dBm"}),
    Case("telecom", "support tickets: ticket id, customer id, channel phone/email/chat, opened at, "
         "resolved at, priority low, medium or high, satisfaction rating 1-5",
         {"ticket_id": "*/id", "customer_id": "*/id",
          "channel": "category cats=phone|email|chat", "opened_at": "datetime",
          "resolved_at": "datetime", "priority": "category cats=low|medium|high",
          "satisfaction_rating": "integer 1..5"}),
    Case("telecom", "broadband customers: account id, postal code, plan speed Mbps, monthly fee in "
         "GBP, contract months (12, 18 or 24), outage count",
         {"account_id": "*/id", "postal_code": "string/postcode",
          "plan_speed_mbps": "num >0 unit=Mbps", "monthly_fee": "float >0 cur=GBP",
          "contract_months": "category cats=12|18|24", "outage_count": "integer >=0"}),
    Case("telecom", "roaming usage: subscriber id, visited country code, data MB, roaming charges "
         "in EUR, session start",
         {"subscriber_id": "*/id", "visited_country_code": "string/country_code",
          "data_mb": "float >=0 unit=MB", "roaming_charges": "float >0 cur=EUR",
          "session_start": "datetime"}),
    # travel
    Case("travel", "hotel bookings: booking reference, guest name, check-in date, check-out date, "
         "room type single/double/suite, nightly rate in EUR, number of guests between 1 and 4",
         {"booking_reference": "string pattern", "guest_name": "string/full_name",
          "check_in_date": "date", "check_out_date": "date",
          "room_type": "category cats=single|double|suite", "nightly_rate": "float >0 cur=EUR",
          "number_of_guests": "integer 1..4"}),
    Case("travel", "flights: flight number, departure airport code, arrival airport code, "
         "departure time, delay minutes, seats sold, ticket price in USD",
         {"flight_number": "string pattern", "departure_airport_code": "string pattern",
          "arrival_airport_code": "string pattern", "departure_time": "datetime",
          "delay_minutes": "num unit=minutes", "seats_sold": "integer >=0",
          "ticket_price": "float >0 cur=USD"}),
    Case("travel", "car rentals across 35 branches: rental id, customer name, pickup date, return "
         "date, car class economy/compact/suv, daily rate in EUR, mileage km",
         {"branch_id": "integer/id card=35", "rental_id": "*/id",
          "customer_name": "string/full_name", "pickup_date": "date", "return_date": "date",
          "car_class": "category cats=economy|compact|suv", "daily_rate": "float >0 cur=EUR",
          "mileage_km": "num >=0 unit=km"}),
    Case("travel", "travel itineraries: trip id, traveler email, destination country, trip length "
         "days from 1 to 21, budget in USD, purpose business or leisure",
         {"trip_id": "*/id", "traveler_email": "string/email",
          "destination_country": "string/country", "trip_length_days": "integer 1..21",
          "budget": "float >0 cur=USD", "purpose": "category cats=business|leisure"}),
    Case("travel", "airline loyalty: member number, tier silver/gold/platinum, miles balance, "
         "flights this year, last flight date",
         {"member_number": "*/id", "tier": "category cats=silver|gold|platinum",
          "miles_balance": "integer >=0", "flights_this_year": "integer >=0",
          "last_flight_date": "date"}),
    Case("travel", "tour reviews: review id, tour name, rating between 1 and 5, review text, "
         "reviewer country, posted at",
         {"review_id": "*/id", "tour_name": "string", "rating": "integer 1..5",
          "review_text": "string", "reviewer_country": "string/country",
          "posted_at": "datetime"}),
    # saas
    Case("saas", "Generate 3k users with uuid, username, email, is_verified, plan, last_login_at",
         {"uuid": "uuid/id", "username": "string/username", "email": "string/email",
          "is_verified": "boolean", "plan": "category", "last_login_at": "datetime"}),
    Case("saas", "SaaS subscriptions: account id, plan free/pro/enterprise, seats between 1 and "
         "500, MRR in USD, started at, churned",
         {"account_id": "*/id", "plan": "category cats=free|pro|enterprise",
          "seats": "integer 1..500", "mrr": "float >0 cur=USD", "started_at": "datetime",
          "churned": "boolean"}),
    Case("saas", "product analytics events for 5000 users: event id, user id, event name, occurred "
         "at, platform web/ios/android, session duration seconds",
         {"event_id": "*/id", "user_id": "integer/id card=5000", "event_name": "string",
          "occurred_at": "datetime", "platform": "category cats=web|ios|android",
          "session_duration_seconds": "num >=0 unit=seconds"}),
    Case("saas", "API request logs: request id, endpoint, http method GET/POST/PUT/DELETE, status "
         "code, latency ms, client ip",
         {"request_id": "*/id", "endpoint": "string",
          "http_method": "category cats=GET|POST|PUT|DELETE", "status_code": "category has=200",
          "latency_ms": "float >=0 unit=ms", "client_ip": "string/ipv4"}),
    Case("saas", "feature flags: flag key, environment dev/staging/prod, enabled, rollout percent, "
         "updated at",
         {"flag_key": "string", "environment": "category cats=dev|staging|prod",
          "enabled": "boolean", "rollout_percent": "float 0..100 unit=percent",
          "updated_at": "datetime"}),
    Case("saas", "invoices for 400 tenants: invoice id, tenant id, billing period start, amount in "
         "EUR, paid (yes/no), payment method card, sepa or invoice",
         {"invoice_id": "*/id", "tenant_id": "integer/id card=400",
          "billing_period_start": "date|datetime", "amount": "float >0 cur=EUR",
          "paid": "boolean", "payment_method": "category cats=card|sepa|invoice"}),
]  # fmt: skip

# Written after the rules were tuned on CASES. Their first score, before any rule saw them: 7 of
# 20 prompts exactly right, 100 of 116 columns (86.2%). The rules were then fixed for what they
# showed (multi-word categories, "out of 100", a range on a level, -ed flags, "people"), so
# they are no longer held out; HELD_OUT_2 is.
HELD_OUT = [
    Case("retail", "returns log: return id, order id, reason damaged/wrong size/changed mind, "
         "refund amount in EUR, returned on, restocked (yes/no)",
         {"return_id": "*/id", "order_id": "*/id",
          "reason": "category cats=damaged|wrong~size|changed~mind",
          "refund_amount": "float >0 cur=EUR", "returned_on": "date", "restocked": "boolean"}),
    Case("retail", "Generate 2,000 gift cards with card code, initial value in USD, remaining "
         "balance, issued at, expires on, is_redeemed",
         {"card_code": "string pattern", "initial_value": "float >0 cur=USD",
          "remaining_balance": "float >=0", "issued_at": "datetime", "expires_on": "date",
          "is_redeemed": "boolean"}),
    Case("finance", "ATM withdrawals across 120 ATMs: withdrawal id, card number, amount between "
         "20 and 500, withdrawn at, fee in EUR",
         {"atm_id": "integer/id card=120", "withdrawal_id": "*/id",
          "card_number": "string pattern", "amount": "num 20..500",
          "withdrawn_at": "datetime", "fee": "float >=0 cur=EUR"}),
    Case("finance", "budget planning: department, fiscal year, planned spend in USD, actual spend, "
         "variance percent",
         {"department": "category", "fiscal_year": "integer",
          "planned_spend": "float >0 cur=USD", "actual_spend": "float >0",
          "variance_percent": "float unit=percent"}),
    Case("health", "ER visits: visit id, patient id, arrival time, triage level 1-5, chief "
         "complaint, wait minutes, admitted",
         {"visit_id": "*/id", "patient_id": "*/id", "arrival_time": "datetime",
          "triage_level": "integer 1..5", "chief_complaint": "string/sentence",
          "wait_minutes": "num >=0 unit=minutes", "admitted": "boolean"}),
    Case("health", "vaccination records for 3000 people: person id, vaccine name, dose number "
         "from 1 to 3, administered on, site left arm or right arm",
         {"person_id": "integer/id card=3000", "vaccine_name": "string",
          "dose_number": "integer 1..3", "administered_on": "date",
          "site": "category cats=left~arm|right~arm"}),
    Case("iot", "wind turbine readings: turbine id, timestamp, wind speed m/s, power output kW, "
         "rotor rpm, blade pitch degrees",
         {"turbine_id": "*/id", "timestamp": "datetime", "wind_speed": "float >=0 unit=m/s",
          "power_output_kw": "num >=0 unit=kW", "rotor_rpm": "num >=0 unit=rpm",
          "blade_pitch_degrees": "num"}),
    Case("iot", "smart thermostat events for 300 homes: home id, event time, setpoint celsius "
         "between 16 and 26, mode heat/cool/off, occupancy detected",
         {"home_id": "integer/id card=300", "event_time": "datetime",
          "setpoint_celsius": "float 16..26 unit=celsius",
          "mode": "category cats=heat|cool|off", "occupancy_detected": "boolean"}),
    Case("hr", "training sessions: session id, employee id, course title, hours spent, completed "
         "on, score out of 100",
         {"session_id": "*/id", "employee_id": "*/id", "course_title": "string",
          "hours_spent": "num >=0 unit=hours", "completed_on": "date",
          "score": "integer max=100"}),
    Case("hr", "exit interviews: employee id, exit date, reason for leaving, rehire eligible "
         "(yes/no), tenure months",
         {"employee_id": "*/id", "exit_date": "date", "reason_for_leaving": "string/sentence",
          "rehire_eligible": "boolean", "tenure_months": "integer >=0"}),
    Case("logistics", "last-mile deliveries for 60 couriers: courier id, parcel id, delivery "
         "attempt count, delivered at, signature required, delivery fee in GBP",
         {"courier_id": "integer/id card=60", "parcel_id": "*/id",
          "delivery_attempt_count": "integer >=0", "delivered_at": "datetime",
          "signature_required": "boolean", "delivery_fee": "float >0 cur=GBP"}),
    Case("logistics", "purchase orders: PO number, supplier name, order date, expected delivery "
         "date, total cost in EUR, status draft/sent/received",
         {"po_number": "*/id", "supplier_name": "string/company", "order_date": "date",
          "expected_delivery_date": "date", "total_cost": "float >0 cur=EUR",
          "status": "category cats=draft|sent|received"}),
    Case("education", "library loans: loan id, student id, book ISBN, borrowed on, due on, "
         "returned late",
         {"loan_id": "*/id", "student_id": "*/id", "book_isbn": "string pattern",
          "borrowed_on": "date", "due_on": "date", "returned_late": "boolean"}),
    Case("education", "university applications: applicant id, intended major, SAT score between "
         "400 and 1600, high school GPA, admitted",
         {"applicant_id": "*/id", "intended_major": "category|string",
          "sat_score": "integer 400..1600", "high_school_gpa": "float 0..4",
          "admitted": "boolean"}),
    Case("telecom", "SMS campaigns: campaign id, sent at, recipients count, delivery rate percent, "
         "opt-out count, cost in EUR",
         {"campaign_id": "*/id", "sent_at": "datetime", "recipients_count": "integer >=0",
          "delivery_rate_percent": "float 0..100 unit=percent", "opt_out_count": "integer >=0",
          "cost": "float >0 cur=EUR"}),
    Case("telecom", "5G cell sites: site id, latitude, longitude, bandwidth MHz, connected "
         "devices, uptime percent",
         {"site_id": "*/id", "latitude": "float -90..90", "longitude": "float -180..180",
          "bandwidth_mhz": "num unit=MHz", "connected_devices": "integer >=0",
          "uptime_percent": "float 0..100 unit=percent"}),
    Case("travel", "cruise bookings: booking id, passenger name, cabin class "
         "inside/oceanview/balcony/suite, departure port, sail date, fare in USD",
         {"booking_id": "*/id", "passenger_name": "string/full_name",
          "cabin_class": "category cats=inside|oceanview|balcony|suite",
          "departure_port": "string", "sail_date": "date", "fare": "float >0 cur=USD"}),
    Case("travel", "airport security wait times: airport code, checkpoint, measured at, wait "
         "minutes around 15 with std 5, lane open (true/false)",
         {"airport_code": "string pattern", "checkpoint": "string", "measured_at": "datetime",
          "wait_minutes": "float normal(15,5) unit=minutes", "lane_open": "boolean"}),
    Case("saas", "support chat transcripts: chat id, account id, agent name, started at, first "
         "response seconds, csat score 1-5, resolved",
         {"chat_id": "*/id", "account_id": "*/id", "agent_name": "string/full_name",
          "started_at": "datetime", "first_response_seconds": "num >=0 unit=seconds",
          "csat_score": "integer 1..5", "resolved": "boolean"}),
    Case("saas", "cloud usage billing for 250 workspaces: workspace id, usage date, compute hours, "
         "storage GB, egress GB, charge in USD",
         {"workspace_id": "integer/id card=250", "usage_date": "date",
          "compute_hours": "num >=0 unit=hours", "storage_gb": "num >=0 unit=GB",
          "egress_gb": "num >=0 unit=GB", "charge": "float >0 cur=USD"}),
]  # fmt: skip

# Written after all the tuning above. Their first score, before any rule saw them: 11 of 20
# prompts exactly right, 108 of 123 columns (87.8%). A few general rules were fixed after it
# (any "X number" is an id, participle flags, "field of study"), so it is no longer held out
# either. Not asserted by the tests beyond drafting a valid schema.
HELD_OUT_2 = [
    Case("retail", "flash sale orders: order ref, buyer email, product SKU, quantity between 1 and "
         "3, sale price in EUR, ordered at, payment status authorized/captured/failed",
         {"order_ref": "*/id", "buyer_email": "string/email", "product_sku": "string pattern",
          "quantity": "integer 1..3", "sale_price": "float >0 cur=EUR",
          "ordered_at": "datetime",
          "payment_status": "category cats=authorized|captured|failed"}),
    Case("retail", "store visits for 12 stores: visit date, visitors count, conversion rate "
         "percent, average basket value in GBP",
         {"store_id": "integer/id card=12", "visit_date": "date",
          "visitors_count": "integer >=0",
          "conversion_rate_percent": "float 0..100 unit=percent",
          "average_basket_value": "float >0 cur=GBP"}),
    Case("finance", "mortgage portfolio: loan id, borrower name, principal in USD, interest rate "
         "percent between 2 and 8, term years (15, 20 or 30), origination date, delinquent",
         {"loan_id": "*/id", "borrower_name": "string/full_name",
          "principal": "float >0 cur=USD", "interest_rate_percent": "float 2..8 unit=percent",
          "term_years": "category cats=15|20|30", "origination_date": "date",
          "delinquent": "boolean"}),
    Case("finance", "expense reports: report id, employee email, expense category "
         "travel/meals/lodging/other, amount in CHF, submitted at, approved by manager (yes/no)",
         {"report_id": "*/id", "employee_email": "string/email",
          "expense_category": "category cats=travel|meals|lodging|other",
          "amount": "float >0 cur=CHF", "submitted_at": "datetime",
          "approved_by_manager": "boolean"}),
    Case("health", "blood donations for 800 donors: donor id, blood group, donation date, volume "
         "ml between 400 and 500, hemoglobin g/dL around 14 with std 1.2",
         {"donor_id": "integer/id card=800", "blood_group": "category",
          "donation_date": "date", "volume_ml": "num 400..500 unit=mL",
          "hemoglobin": "float normal(14,1.2) unit=g/dL"}),
    Case("health", "telehealth consultations: consultation id, patient email, doctor name, "
         "specialty, started at, duration minutes, follow up needed",
         {"consultation_id": "*/id", "patient_email": "string/email",
          "doctor_name": "string/full_name", "specialty": "category|string",
          "started_at": "datetime", "duration_minutes": "num >=0 unit=minutes",
          "follow_up_needed": "boolean"}),
    Case("iot", "parking sensors across 150 spots: spot id, occupied, changed at, battery percent, "
         "signal rssi dBm",
         {"spot_id": "integer/id card=150", "occupied": "boolean", "changed_at": "datetime",
          "battery_percent": "float 0..100 unit=percent", "signal_rssi_dbm": "float unit=dBm"}),
    Case("iot", "greenhouse climate log: zone id, timestamp, air temperature celsius, soil "
         "moisture percent, light lux, co2 ppm at most 1500",
         {"zone_id": "*/id", "timestamp": "datetime",
          "air_temperature_celsius": "float unit=celsius",
          "soil_moisture_percent": "float 0..100 unit=percent",
          "light_lux": "num >=0 unit=lux", "co2_ppm": "num max=1500 unit=ppm"}),
    Case("hr", "contractors: contractor id, full name, hourly rate in USD, skills (python, sql, "
         "design), start date, contract end date, remote (yes/no)",
         {"contractor_id": "*/id", "full_name": "string/full_name",
          "hourly_rate": "float >0 cur=USD", "skills": "category cats=python|sql|design",
          "start_date": "date", "contract_end_date": "date", "remote": "boolean"}),
    Case("hr", "interview feedback: candidate id, interviewer name, stage phone screen, onsite or "
         "final, score between 1 and 4, hire recommendation strong yes/yes/no/strong no",
         {"candidate_id": "*/id", "interviewer_name": "string/full_name",
          "stage": "category cats=phone~screen|onsite|final", "score": "integer 1..4",
          "hire_recommendation": "category cats=strong~yes|yes|no|strong~no"}),
    Case("logistics", "truck trips for 40 trucks: trip id, departure time, arrival time, distance "
         "miles, fuel used liters, driver name",
         {"truck_id": "integer/id card=40", "trip_id": "*/id", "departure_time": "datetime",
          "arrival_time": "datetime", "distance_miles": "num >=0 unit=miles",
          "fuel_used_liters": "num >=0 unit=L", "driver_name": "string/full_name"}),
    Case("logistics", "customs declarations: declaration number, HS code, origin country, "
         "declared value in EUR, weight kg, cleared on",
         {"declaration_number": "*/id", "hs_code": "string pattern",
          "origin_country": "string/country", "declared_value": "float >0 cur=EUR",
          "weight_kg": "float >0 unit=kg", "cleared_on": "date"}),
    Case("education", "MOOC learners for 25 courses: learner id, country, enrolled at, progress "
         "percent, certificate earned",
         {"course_id": "integer/id card=25", "learner_id": "*/id", "country": "string/country",
          "enrolled_at": "datetime", "progress_percent": "float 0..100 unit=percent",
          "certificate_earned": "boolean"}),
    Case("education", "scholarship awards: award id, student name, amount in GBP, award year, "
         "field of study, renewable",
         {"award_id": "*/id", "student_name": "string/full_name",
          "amount": "float >0 cur=GBP", "award_year": "integer",
          "field_of_study": "category|string", "renewable": "boolean"}),
    Case("telecom", "fiber installations: order id, address, postcode, installation date, "
         "technician name, speed tier 100/500/1000 Mbps",
         {"order_id": "*/id", "address": "string/street_address",
          "postcode": "string/postcode", "installation_date": "date",
          "technician_name": "string/full_name", "speed_tier": "category cats=100|500|1000"}),
    Case("telecom", "IoT SIM cards: ICCID, IMSI, activation date, data used MB, plan name, "
         "suspended",
         {"iccid": "string pattern", "imsi": "string pattern", "activation_date": "date",
          "data_used_mb": "num >=0 unit=MB", "plan_name": "category|string",
          "suspended": "boolean"}),
    Case("travel", "ride hailing trips across 30 cities: trip id, pickup time, dropoff time, "
         "distance km, fare in USD, surge multiplier between 1 and 3, rating 1-5",
         {"city_id": "integer/id card=30", "trip_id": "*/id", "pickup_time": "datetime",
          "dropoff_time": "datetime", "distance_km": "float >=0 unit=km",
          "fare": "float >0 cur=USD", "surge_multiplier": "float 1..3",
          "rating": "integer 1..5"}),
    Case("travel", "visa applications: application number, nationality, visa type "
         "tourist/business/student, submitted on, processing days, approved",
         {"application_number": "*/id", "nationality": "string/country",
          "visa_type": "category cats=tourist|business|student", "submitted_on": "date",
          "processing_days": "integer >=0", "approved": "boolean"}),
    Case("saas", "login audit log: event id, user email, login at, ip address, success "
         "(true/false), mfa method sms/totp/push",
         {"event_id": "*/id", "user_email": "string/email", "login_at": "datetime",
          "ip_address": "string/ipv4", "success": "boolean",
          "mfa_method": "category cats=sms|totp|push"}),
    Case("saas", "trial signups: signup id, company name, company size 1-10/11-50/51-200/200+, "
         "signup date, converted to paid, plan chosen",
         {"signup_id": "*/id", "company_name": "string/company",
          "company_size": "category cats=1-10|11-50|51-200|200+", "signup_date": "date",
          "converted_to_paid": "boolean", "plan_chosen": "category"}),
]  # fmt: skip

# Written blind on 2026-12-07 (by someone who read only this docstring and the first CASES,
# never the drafter's rules or the other sets), after all the tuning above; units spelled in
# the drafter's vocabulary (volts -> V). Its first score, before any rule saw it: 17 of 30
# prompts exactly right, 161 of 177 columns (91.0%). General rules were fixed after it.
HELD_OUT_3 = [
    # retail
    Case("retail", "loyalty members: member id, first name, last name, phone number, signup date, "
         "points balance (at least 0), tier bronze/silver/gold",
         {"member_id": "*/id", "first_name": "string", "last_name": "string",
          "phone_number": "string", "signup_date": "date", "points_balance": "integer >=0",
          "tier": "category cats=bronze|silver|gold"}),
    Case("retail", "I need 20k rows of in-store transactions across 40 stores: transaction "
         "timestamp, basket size between 1 and 30 items, amount paid in EUR, payment method "
         "(cash, card, mobile)",
         {"store_id": "integer/id card=40", "transaction_timestamp": "datetime",
          "basket_size": "integer 1..30", "amount_paid": "float >0 cur=EUR",
          "payment_method": "category cats=cash|card|mobile"}),
    Case("retail", "daily inventory snapshots for 200 products with date, warehouse, on hand "
         "quantity, reorder point, unit cost in USD",
         {"product_id": "integer/id card=200", "date": "date", "warehouse": "string",
          "on_hand_quantity": "integer >=0", "reorder_point": "integer >=0",
          "unit_cost": "float >0 cur=USD"}),
    # finance
    Case("finance", "bank transactions: transaction id, IBAN, amount in EUR, transaction date, "
         "merchant category one of groceries, travel, utilities or entertainment, is_fraud",
         {"transaction_id": "*/id", "iban": "string pattern", "amount": "float >0 cur=EUR",
          "transaction_date": "date",
          "merchant_category": "category cats=groceries|travel|utilities|entertainment",
          "is_fraud": "boolean"}),
    Case("finance", "Generate 5000 loan applications with applicant age at least 18, annual "
         "income in USD, credit score from 300 to 850, loan amount, loan purpose (car, home, "
         "education or business), approved (yes/no)",
         {"applicant_age": "integer min=18", "annual_income": "float >0 cur=USD",
          "credit_score": "integer 300..850", "loan_amount": "float >0",
          "loan_purpose": "category cats=car|home|education|business", "approved": "boolean"}),
    Case("finance", "daily stock prices for 25 tickers: trading date, open price, close price, "
         "volume, daily return in percent around 0 with std 2",
         {"ticker_id": "integer/id card=25", "trading_date": "date", "open_price": "float >0",
          "close_price": "float >0", "volume": "integer >=0",
          "daily_return": "float normal(0,2) unit=percent"}),
    # health
    Case("health", "patient visits: visit id, patient id, visit date, diagnosis code (ICD-10), "
         "systolic blood pressure around 120 with std 15, heart rate between 40 and 180",
         {"visit_id": "*/id", "patient_id": "*/id", "visit_date": "date",
          "diagnosis_code": "string pattern", "systolic_blood_pressure": "num normal(120,15)",
          "heart_rate": "integer 40..180"}),
    Case("health", "I want 2000 rows of hospital admissions with admission timestamp, discharge "
         "timestamp, ward (ICU, cardiology, oncology, pediatrics), length of stay in days, "
         "readmitted (true/false)",
         {"admission_timestamp": "datetime", "discharge_timestamp": "datetime",
          "ward": "category cats=ICU|cardiology|oncology|pediatrics",
          "length_of_stay": "integer >=0", "readmitted": "boolean"}),
    Case("health", "prescriptions: prescription id, patient name, drug name, dosage in mg, "
         "refills from 0 to 5, prescription date",
         {"prescription_id": "*/id", "patient_name": "string", "drug_name": "string",
          "dosage": "float >0 unit=mg", "refills": "integer 0..5", "prescription_date": "date"}),
    # iot
    Case("iot", "temperature readings every 5 minutes for 30 sensors: timestamp, temperature in "
         "celsius around 21 with std 3, humidity percent, battery voltage in volts",
         {"sensor_id": "integer/id card=30", "timestamp": "datetime",
          "temperature": "float normal(21,3) unit=celsius",
          "humidity": "float 0..100 unit=percent", "battery_voltage": "float >0 unit=V"}),
    Case("iot", "smart meter data, hourly, across 100 households: reading time, energy "
         "consumption in kWh, peak flag, tariff (day, night or weekend)",
         {"household_id": "integer/id card=100", "reading_time": "datetime",
          "energy_consumption": "float >=0 unit=kWh", "peak_flag": "boolean",
          "tariff": "category cats=day|night|weekend"}),
    Case("iot", "device telemetry: device id, firmware version, cpu usage from 0 to 100 percent, "
         "memory used in MB, status online/offline/error, last seen timestamp",
         {"device_id": "*/id", "firmware_version": "string",
          "cpu_usage": "float 0..100 unit=percent", "memory_used": "float >=0 unit=MB",
          "status": "category cats=online|offline|error", "last_seen_timestamp": "datetime"}),
    # hr
    Case("hr", "employees: employee id, full name, work email, department (engineering, sales, "
         "marketing, finance), hire date, annual salary in GBP",
         {"employee_id": "*/id", "full_name": "string", "work_email": "string/email",
          "department": "category cats=engineering|sales|marketing|finance",
          "hire_date": "date", "annual_salary": "float >0 cur=GBP"}),
    Case("hr", "Create 500 performance reviews with employee id, review date, manager rating "
         "between 1 and 5, self rating 1-5, promotion recommended (yes/no), comments",
         {"employee_id": "*/id", "review_date": "date", "manager_rating": "integer 1..5",
          "self_rating": "integer 1..5", "promotion_recommended": "boolean",
          "comments": "string"}),
    Case("hr", "timesheets for 80 employees, one row per day: work date, hours worked between 0 "
         "and 12, overtime hours, is_remote",
         {"employee_id": "integer/id card=80", "work_date": "date",
          "hours_worked": "float 0..12", "overtime_hours": "float >=0",
          "is_remote": "boolean"}),
    # logistics
    Case("logistics", "shipments: tracking number, origin postal code, destination postal code, "
         "weight in kg, shipping cost in USD, carrier one of DHL, UPS or FedEx",
         {"tracking_number": "string", "origin_postal_code": "string pattern",
          "destination_postal_code": "string pattern", "weight": "float >0 unit=kg",
          "shipping_cost": "float >0 cur=USD", "carrier": "category cats=DHL|UPS|FedEx"}),
    Case("logistics", "GPS pings every 30 seconds for 15 trucks with timestamp, latitude, "
         "longitude, speed in km/h from 0 to 120, fuel level percent",
         {"truck_id": "integer/id card=15", "timestamp": "datetime", "latitude": "float",
          "longitude": "float", "speed": "float 0..120 unit=km/h",
          "fuel_level": "float 0..100 unit=percent"}),
    Case("logistics", "I need a deliveries table: delivery id, order id, scheduled date, "
         "delivered at timestamp, delivery status (on time, late, failed), distance in km, "
         "driver name",
         {"delivery_id": "*/id", "order_id": "*/id", "scheduled_date": "date",
          "delivered_at": "datetime", "delivery_status": "category cats=on~time|late|failed",
          "distance": "float >0 unit=km", "driver_name": "string"}),
    # education
    Case("education", "students: student id, name, date of birth, grade level from 1 to 12, gpa "
         "between 0 and 4, enrolled (yes/no)",
         {"student_id": "*/id", "name": "string", "date_of_birth": "date",
          "grade_level": "integer 1..12", "gpa": "float 0..4", "enrolled": "boolean"}),
    Case("education", "exam results for 300 students, each student with 3 to 8 exams: exam date, "
         "subject (math, physics, chemistry or biology), score around 70 with std 12, passed",
         {"student_id": "integer/id card=300", "exam_date": "date",
          "subject": "category cats=math|physics|chemistry|biology",
          "score": "num normal(70,12)", "passed": "boolean"}),
    Case("education", "online course enrollments: enrollment id, course name, enrollment date, "
         "progress in percent, tuition fee in EUR, learner email",
         {"enrollment_id": "*/id", "course_name": "string", "enrollment_date": "date",
          "progress": "float 0..100 unit=percent", "tuition_fee": "float >0 cur=EUR",
          "learner_email": "string/email"}),
    # telecom
    Case("telecom", "call detail records: caller number, callee number, call start time, "
         "duration in minutes, call type local/international/roaming, dropped (yes/no)",
         {"caller_number": "string", "callee_number": "string", "call_start_time": "datetime",
          "duration": "float >=0 unit=minutes",
          "call_type": "category cats=local|international|roaming", "dropped": "boolean"}),
    Case("telecom", "monthly usage for 1000 subscribers with billing month, data used in GB, "
         "minutes used, SMS count, monthly bill in USD",
         {"subscriber_id": "integer/id card=1000", "billing_month": "date",
          "data_used": "float >=0 unit=GB", "minutes_used": "num >=0",
          "sms_count": "integer >=0", "monthly_bill": "float >0 cur=USD"}),
    Case("telecom", "Generate 8k mobile customers: customer id, plan (prepaid, postpaid, family), "
         "contract start date, monthly fee in EUR, churned, ISO country code",
         {"customer_id": "*/id", "plan": "category cats=prepaid|postpaid|family",
          "contract_start_date": "date", "monthly_fee": "float >0 cur=EUR",
          "churned": "boolean", "country_code": "string/country"}),
    # travel
    Case("travel", "flight bookings: booking reference, passenger name, departure airport, "
         "arrival airport, departure datetime, ticket price in USD, cabin class "
         "economy/premium economy/business/first",
         {"booking_reference": "string", "passenger_name": "string",
          "departure_airport": "string", "arrival_airport": "string",
          "departure_datetime": "datetime", "ticket_price": "float >0 cur=USD",
          "cabin_class": "category cats=economy|premium~economy|business|first"}),
    Case("travel", "hotel stays: guest email, check-in date, number of nights at least 1, room "
         "type single, double or suite, nightly rate in EUR, breakfast included",
         {"guest_email": "string/email", "check_in_date": "date",
          "number_of_nights": "integer min=1", "room_type": "category cats=single|double|suite",
          "nightly_rate": "float >0 cur=EUR", "breakfast_included": "boolean"}),
    Case("travel", "I need 3000 rows of car rentals across 25 locations with pickup date, return "
         "date, daily rate in GBP, mileage in km, insurance (yes/no)",
         {"location_id": "integer/id card=25", "pickup_date": "date", "return_date": "date",
          "daily_rate": "float >0 cur=GBP", "mileage": "float >=0 unit=km",
          "insurance": "boolean"}),
    # saas
    Case("saas", "subscriptions: account id, plan free/pro/enterprise, seats from 1 to 500, MRR "
         "in USD, trial (true/false), started at",
         {"account_id": "*/id", "plan": "category cats=free|pro|enterprise",
          "seats": "integer 1..500", "mrr": "float >=0 cur=USD", "trial": "boolean",
          "started_at": "date|datetime"}),
    Case("saas", "product analytics events for 50 workspaces, with event timestamp, user email, "
         "event name (login, create_project, invite_user, export), session length in minutes "
         "around 12 with std 4",
         {"workspace_id": "integer/id card=50", "event_timestamp": "datetime",
          "user_email": "string/email",
          "event_name": "category cats=login|create_project|invite_user|export",
          "session_length": "float normal(12,4) unit=minutes"}),
    Case("saas", "support tickets: ticket id, customer email, priority one of low, medium, high "
         "or urgent, created at, resolution time in hours, satisfaction score 1 to 10, "
         "description",
         {"ticket_id": "*/id", "customer_email": "string/email",
          "priority": "category cats=low|medium|high|urgent", "created_at": "datetime",
          "resolution_time": "float >=0 unit=hours", "satisfaction_score": "integer 1..10",
          "description": "string"}),
]  # fmt: skip

_NORMAL = re.compile(r"normal\((-?[\d.]+),(-?[\d.]+)\)")
_RANGE = re.compile(r"(-?[\d.]+)\.\.(-?[\d.]+)")


def _type_ok(column: Column, kind: str) -> bool:
    kind, _, semantic = kind.partition("/")
    if semantic and column.semantic_type != semantic:
        return False
    if kind == "*":
        return True
    if kind == "num":
        return column.type in ("integer", "float")
    return column.type in kind.split("|")


def _token_ok(column: Column, token: str) -> bool:
    low, high = column.min, column.max
    if token == "pattern":
        return column.pattern is not None
    if token in (">0", ">=0"):
        return isinstance(low, int | float) and (low > 0 if token == ">0" else low >= 0)
    if match := _NORMAL.fullmatch(token):
        return (column.distribution, column.mean, column.std) == (
            "normal", float(match.group(1)), float(match.group(2)),
        )  # fmt: skip
    if match := _RANGE.fullmatch(token):
        return (low, high) == (float(match.group(1)), float(match.group(2)))
    key, _, value = token.partition("=")
    if key == "min":
        return low == float(value)
    if key == "max":
        return high == float(value)
    if key == "cur":
        return column.currency == value
    if key == "unit":
        return column.unit == value
    if key == "cats":
        return column.categories == value.replace("~", " ").split("|")
    if key == "has":
        return value in (column.categories or ())
    if key == "card":
        return (column.semantic_type, low, high) == ("id", 1, int(value))
    raise ValueError(f"unknown expectation {token!r}")


def column_right(schema: TableSchema, name: str, spec: str) -> bool:
    try:
        column = schema.column(name)
    except KeyError:
        return False
    kind, *tokens = spec.split(" ")
    return _type_ok(column, kind) and all(_token_ok(column, token) for token in tokens)


def score(case: Case, schema: TableSchema) -> tuple[bool, int, list[str]]:
    """(drafted exactly right, columns right, the expected columns that are wrong)."""
    wrong = [name for name, spec in case.columns.items() if not column_right(schema, name, spec)]
    exact = (
        not wrong and [c.name for c in schema.columns] == list(case.columns) and not schema.warnings
    )
    return exact, len(case.columns) - len(wrong), wrong


@dataclass(frozen=True)
class Shares:
    prompts: int
    exact: int
    columns: int
    right: int

    @property
    def exact_share(self) -> float:
        return self.exact / self.prompts if self.prompts else 0.0

    @property
    def column_share(self) -> float:
        return self.right / self.columns if self.columns else 0.0


def shares(cases: list[Case], draft) -> Shares:
    """The prompt set scored with `draft` (prompt → TableSchema): the offline drafter, or the
    configured LLM (`api.serving.schema_drafter`), through the same checks."""
    exact = right = columns = 0
    for case in cases:
        is_exact, is_right, _ = score(case, draft(case.prompt))
        exact += is_exact
        right += is_right
        columns += len(case.columns)
    return Shares(len(cases), exact, columns, right)
