#!/usr/bin/env python3
"""A synthetic population for caregate's benchmarks: invented citizens with test-range NHS numbers and
a health and social care record each, as NDJSON (one FHIR R4 resource a line) that `caregate import`
loads. Not for conformance testing and not a model of any real population: the shapes (record size
growing with age, family names shared by many, codes from the real code systems) are what matter to
search, the clinical content is plausible at best.

Deterministic: the same --seed, --citizens, --mean-resources, --home-share and --as-of give the same
bytes. Citizen i's NHS number depends on i alone, and its record on (seed, i) alone, so a smaller
population is a prefix of a larger one with the same seed.

Output order: the Organizations, then each citizen's Patient followed by that citizen's items
(EpisodeOfCare, Encounters, Conditions, Observations, MedicationRequests, AllergyIntolerances,
CarePlans), so that every reference to a citizen names one already written.

    python3 bench/population.py --citizens 1000 --seed 1 --out pop.ndjson --targets targets.tsv

Python 3 standard library only.
"""

import argparse
import datetime as dt
import json
import math
import random
import sys

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
DMD = "https://dmd.nhs.uk"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
VERIFICATION_STATUS_EXTENSION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus")
VERIFICATION_STATUS_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"

# The organisations. A81001, RX1, 8JK23 and QZZ are caregate's default organisations
# (gateway/access/default-organisations.json), so the default policy applies to what they hold; the
# other practices are invented and not in that register (their citizens are reachable only by the
# ICS's system role, or by RX1 and 8JK23 where those have a relationship).
HOME_PRACTICE = "A81001"
OTHER_PRACTICES = ["A81002", "A81003", "A81004", "A81005"]
ACUTE_TRUST = "RX1"
SOCIAL_CARE = "8JK23"
ICB = "QZZ"
ORGANISATIONS = [
    (HOME_PRACTICE, "Demo GP practice"),
    ("A81002", "Riverside Medical Centre"),
    ("A81003", "Hillview Surgery"),
    ("A81004", "Park Lane Health Centre"),
    ("A81005", "Old Mill Family Practice"),
    (ACUTE_TRUST, "Demo acute hospital trust"),
    (SOCIAL_CARE, "Demo adult social care provider"),
    (ICB, "Demo integrated care board"),
]

FAMILY_NAMES = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Thomas", "Clarke",
    "Jackson", "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper", "Hill", "Ward", "Hughes",
    "Moore", "Clark", "King", "Harrison", "Lewis", "Baker", "Lee", "Allen", "Morris", "Khan",
    "Scott", "Watson", "Davis", "Parker", "James", "Bennett", "Young", "Phillips", "Richardson", "Mitchell",
    "Begum", "Ahmed", "Ali", "Hussain", "Kaur", "Singh", "Nowak", "Kowalski", "Okafor", "Mensah",
]
GIVEN_NAMES = {
    "male": ["Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Muhammad", "Thomas", "Oscar",
             "William", "James", "Leo", "Alfie", "Henry", "Joshua", "Freddie", "Archie", "Ethan", "Isaac",
             "David", "John", "Michael", "Peter", "Paul", "Robert", "Stephen", "Kwame", "Arjun", "Tomasz"],
    "female": ["Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophia", "Grace", "Mia", "Poppy", "Ella",
               "Lily", "Evie", "Isabella", "Sophie", "Ivy", "Freya", "Harper", "Willow", "Aisha", "Fatima",
               "Margaret", "Susan", "Patricia", "Elizabeth", "Mary", "Jean", "Sarah", "Priya", "Ngozi", "Zofia"],
}
STREETS = ["High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane", "Manor Road",
           "Park Avenue", "Mill Lane", "Kings Road", "Queens Road", "New Street", "School Lane"]
TOWNS = [("Leeds", "LS"), ("Bradford", "BD"), ("Wakefield", "WF"), ("Harrogate", "HG"), ("Halifax", "HX")]

# Age bands (lower bound, share of the population), roughly England's.
AGE_BANDS = [(0, 11.5), (10, 11.5), (20, 13.0), (30, 13.5), (40, 12.5), (50, 13.5), (60, 11.0), (70, 8.5),
             (80, 4.0), (90, 1.0)]

# Observations: (LOINC code, display, category, UCUM unit, low, high, decimals).
OBSERVATION_CODES = [
    ("8867-4", "Heart rate", "vital-signs", "/min", 50, 110, 0),
    ("9279-1", "Respiratory rate", "vital-signs", "/min", 12, 24, 0),
    ("8310-5", "Body temperature", "vital-signs", "Cel", 35.8, 38.6, 1),
    ("8480-6", "Systolic blood pressure", "vital-signs", "mm[Hg]", 100, 175, 0),
    ("8462-4", "Diastolic blood pressure", "vital-signs", "mm[Hg]", 60, 100, 0),
    ("29463-7", "Body weight", "vital-signs", "kg", 45, 120, 1),
    ("8302-2", "Body height", "vital-signs", "cm", 150, 195, 0),
    ("39156-5", "Body mass index (BMI) [Ratio]", "vital-signs", "kg/m2", 18, 40, 1),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "vital-signs", "%", 91, 100, 0),
    ("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol", "laboratory", "mmol/mol", 30, 90, 0),
    ("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "laboratory", "mmol/L", 3.0, 8.0, 1),
    ("14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma", "laboratory", "mmol/L", 0.8, 2.5, 1),
    ("22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma", "laboratory", "mmol/L", 1.5, 5.0, 1),
    ("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma", "laboratory", "mmol/L", 0.5, 3.5, 1),
    ("15074-8", "Glucose [Moles/volume] in Blood", "laboratory", "mmol/L", 3.5, 12.0, 1),
    ("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "laboratory", "umol/L", 50, 200, 0),
    ("62238-1", "Glomerular filtration rate/1.73 sq M.predicted (CKD-EPI)", "laboratory", "mL/min/{1.73_m2}", 15, 120, 0),
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "laboratory", "mmol/L", 131, 147, 0),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "laboratory", "mmol/L", 3.2, 5.6, 1),
    ("22664-7", "Urea [Moles/volume] in Serum or Plasma", "laboratory", "mmol/L", 2.5, 10.0, 1),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "laboratory", "g/L", 100, 170, 0),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "laboratory", "10*9/L", 3.0, 12.0, 1),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "laboratory", "10*9/L", 140, 450, 0),
    ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "laboratory", "U/L", 7, 60, 0),
    ("6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", "laboratory", "U/L", 30, 130, 0),
    ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "laboratory", "g/L", 30, 50, 0),
    ("14631-6", "Bilirubin.total [Moles/volume] in Serum or Plasma", "laboratory", "umol/L", 3, 25, 0),
    ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "laboratory", "m[IU]/L", 0.3, 5.5, 2),
    ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "laboratory", "mg/L", 0.5, 50, 1),
    ("2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "laboratory", "ug/L", 15, 300, 0),
    ("14959-1", "Microalbumin/Creatinine [Mass Ratio] in Urine", "laboratory", "mg/mmol", 0.2, 30, 1),
]
# The common ones are measured far more often than the rest.
OBSERVATION_WEIGHTS = [12, 3, 4, 14, 14, 10, 2, 6, 4, 5, 4, 3, 3, 3, 3, 5, 5, 4, 4, 3, 4, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2]
SMOKING_STATUS = ("72166-2", "Tobacco smoking status")
SMOKING_VALUES = [("266919005", "Never smoked tobacco"), ("8517006", "Ex-smoker"), ("77176002", "Smoker")]

# Conditions: (SNOMED code, display, typical onset age low, chronic?)
CONDITION_CODES = [
    ("38341003", "Hypertensive disorder", 40, True),
    ("44054006", "Diabetes mellitus type 2", 40, True),
    ("195967001", "Asthma", 0, True),
    ("13645005", "Chronic obstructive lung disease", 50, True),
    ("49436004", "Atrial fibrillation", 55, True),
    ("709044004", "Chronic kidney disease", 55, True),
    ("35489007", "Depressive disorder", 15, True),
    ("197480006", "Anxiety disorder", 15, True),
    ("396275006", "Osteoarthritis", 45, True),
    ("40930008", "Hypothyroidism", 30, True),
    ("84114007", "Heart failure", 60, True),
    ("52448006", "Dementia", 70, True),
    ("414545008", "Ischemic heart disease", 50, True),
    ("230690007", "Cerebrovascular accident", 60, False),
    ("414916001", "Obesity", 18, True),
    ("55822004", "Hyperlipidemia", 40, True),
    ("90560007", "Gout", 40, False),
    ("37796009", "Migraine", 12, True),
    ("43116000", "Eczema", 0, False),
    ("279039007", "Low back pain", 20, False),
    ("68566005", "Urinary tract infectious disease", 0, False),
    ("444814009", "Viral sinusitis", 0, False),
]

# Medications: dm+d-shaped codes (SNOMED CT UK drug extension ids) with their VMP names. The codes are
# for realism of shape only; they are not checked against a dm+d release.
MEDICATIONS = [
    ("39732311000001104", "Amlodipine 5mg tablets", True),
    ("42206511000001102", "Ramipril 5mg capsules", True),
    ("39109611000001101", "Metformin 500mg tablets", True),
    ("42382611000001107", "Atorvastatin 20mg tablets", True),
    ("39695211000001102", "Levothyroxine sodium 50microgram tablets", True),
    ("42212211000001106", "Salbutamol 100micrograms/dose inhaler CFC free", True),
    ("39785311000001105", "Sertraline 50mg tablets", True),
    ("42281711000001109", "Apixaban 5mg tablets", True),
    ("39113611000001102", "Bisoprolol 2.5mg tablets", True),
    ("42110511000001103", "Omeprazole 20mg gastro-resistant capsules", True),
    ("39720311000001101", "Paracetamol 500mg tablets", False),
    ("41944711000001100", "Amoxicillin 500mg capsules", False),
    ("39108011000001108", "Ibuprofen 400mg tablets", False),
    ("42015711000001108", "Nitrofurantoin 100mg modified-release capsules", False),
    ("39692211000001102", "Prednisolone 5mg tablets", False),
    ("42094611000001107", "Furosemide 40mg tablets", True),
    ("39686811000001103", "Donepezil 5mg tablets", True),
    ("42338911000001101", "Allopurinol 100mg tablets", True),
    ("39733211000001108", "Co-codamol 30mg/500mg tablets", False),
    ("41950411000001101", "Clarithromycin 500mg tablets", False),
]

ALLERGY_CODES = [
    ("764146007", "Penicillin"),
    ("91936005", "Allergy to penicillin"),
    ("300916003", "Latex allergy"),
    ("91935009", "Allergy to peanuts"),
    ("294505008", "Allergy to amoxicillin"),
    ("418689008", "Allergy to grass pollen"),
]

# Encounters: (share, class code, class display, SNOMED type, type display, at the practice?)
ENCOUNTER_KINDS = [
    (70, "AMB", "ambulatory", "185349003", "Encounter for check up", True),
    (8, "VR", "virtual", "185317003", "Telephone encounter", True),
    (5, "HH", "home health", "439708006", "Home visit", True),
    (10, "AMB", "ambulatory", "185389009", "Follow-up visit", False),
    (4, "EMER", "emergency", "50849002", "Emergency room admission", False),
    (3, "IMP", "inpatient encounter", "183452005", "Emergency hospital admission", False),
]


def nhs_check_digit(nine_digits):
    """The Modulus 11 check digit of nine digits, or None when the number cannot be valid (check 10)."""
    total = sum(int(d) * w for d, w in zip(nine_digits, range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def nhs_number(index):
    """Citizen `index`'s NHS number: in the test range 9xxxxxxxxx, valid, distinct for each index, and
    clear of the demo citizens (9000000009, ...). Prefixes step by 29, and a prefix without a valid
    check digit gives way to the next one up (never more than 28 away, so never another's)."""
    prefix = 900_100_000 + 29 * index
    while True:
        digits = str(prefix)
        check = nhs_check_digit(digits)
        if check is not None and len(set(digits + str(check))) > 1:
            return digits + str(check)
        prefix += 1


def record_weight(age):
    """How large a record is at an age, relative: small for children, a few times the mean by 80."""
    return 0.15 + (age / 45.0) ** 2.5


def mean_record_weight():
    """The population mean of record_weight, over AGE_BANDS (ages uniform within a band)."""
    total_share = sum(share for _, share in AGE_BANDS)
    mean = 0.0
    for low, share in AGE_BANDS:
        mean += share / total_share * sum(record_weight(low + year + 0.5) for year in range(10)) / 10
    return mean


def pick_age(rng):
    low = rng.choices([low for low, _ in AGE_BANDS], weights=[share for _, share in AGE_BANDS])[0]
    return low + rng.random() * 10


def date_text(day):
    return day.isoformat()


def instant_text(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def number(value, decimals):
    """A JSON number with exactly `decimals` decimals (kept as written by caregate)."""
    if decimals == 0:
        return int(round(value))
    return round(value, decimals)


def coding(system, code, display=None):
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def concept(system, code, display=None):
    return {"coding": [coding(system, code, display)]}


def organisation_resources():
    out = []
    for ods, name in ORGANISATIONS:
        out.append({
            "resourceType": "Organization",
            "id": ods,
            "identifier": [{"system": ODS_SYSTEM, "value": ods}],
            "active": True,
            "name": name,
        })
    return out


class citizen_record:
    """One citizen's Patient and items, from (seed, index)."""

    def __init__(self, seed, index, mean_resources, home_share, as_of, mean_weight):
        self.rng = random.Random(f"caregate-population:{seed}:{index}")
        self.index = index
        self.nhs = nhs_number(index)
        self.as_of = as_of
        self.resources = []
        self.observation_codes = set()
        self.active_medications = 0
        self.encounter_dates = []
        rng = self.rng

        self.age = pick_age(rng)
        self.gender = "female" if rng.random() < 0.51 else "male"
        self.birth_date = as_of - dt.timedelta(days=int(self.age * 365.25))
        self.family = rng.choice(FAMILY_NAMES)
        self.given = rng.choice(GIVEN_NAMES[self.gender])
        self.practice = HOME_PRACTICE if rng.random() < home_share else rng.choice(OTHER_PRACTICES)

        # Resources in all, with the Patient: the mean over the population is mean_resources.
        spread = rng.lognormvariate(0, 0.35) / math.exp(0.35 ** 2 / 2)
        total = max(2, round(mean_resources * record_weight(self.age) / mean_weight * spread))
        self.items = total - 1

    # Dates within the record: electronic records go back 20 years at most, and recent years are denser.
    def when(self):
        span_days = min((self.as_of - self.birth_date).days, 20 * 365)
        back = int(span_days * self.rng.random() ** 1.6)
        day = self.as_of - dt.timedelta(days=back)
        return dt.datetime(day.year, day.month, day.day, self.rng.randint(8, 17), self.rng.choice((0, 10, 20, 30, 40, 50)),
                           0, tzinfo=dt.timezone.utc)

    def item_id(self, kind, n):
        return f"{self.nhs}-{kind}-{n}"

    def subject(self):
        return {"reference": f"Patient/{self.nhs}"}

    def patient(self):
        rng = self.rng
        town, area = rng.choice(TOWNS)
        postcode = f"{area}{rng.randint(1, 29)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        return {
            "resourceType": "Patient",
            "id": self.nhs,
            "identifier": [{
                "extension": [{
                    "url": VERIFICATION_STATUS_EXTENSION,
                    "valueCodeableConcept": concept(VERIFICATION_STATUS_SYSTEM, "01", "Number present and verified"),
                }],
                "system": NHS_NUMBER_SYSTEM,
                "value": self.nhs,
            }],
            "name": [{"use": "official", "family": self.family, "given": [self.given]}],
            "gender": self.gender,
            "birthDate": date_text(self.birth_date),
            "address": [{"use": "home", "line": [f"{rng.randint(1, 220)} {rng.choice(STREETS)}"], "city": town,
                         "postalCode": postcode}],
            "generalPractitioner": [{"reference": f"Organization/{self.practice}"}],
        }

    def build(self):
        rng = self.rng
        self.resources.append(self.patient())
        n = self.items
        # The split of the items: a few problems, allergies and care plans; the rest encounters,
        # observations and prescriptions.
        conditions = min(len(CONDITION_CODES), round(n * 0.06 * rng.uniform(0.5, 1.5)))
        allergies = rng.choices([0, 1, 2], weights=[78, 18, 4])[0]
        episode = 1 if rng.random() < (0.12 if self.age >= 65 else 0.02) else 0
        care_plans = min(3, conditions // 3) + episode
        rest = max(0, n - conditions - allergies - episode - care_plans)
        encounters = max(1, round(rest * 0.2)) if rest else 0
        medications = round(rest * 0.18)
        observations = max(0, rest - encounters - medications)

        if episode:
            self.add_episode()
        encounter_refs = [self.add_encounter(k) for k in range(encounters)]
        condition_refs = self.add_conditions(conditions)
        for k in range(observations):
            self.add_observation(k, encounter_refs)
        for k in range(medications):
            self.add_medication(k)
        for k in range(allergies):
            self.add_allergy(k)
        for k in range(care_plans):
            self.add_care_plan(k, condition_refs, social=(episode and k == care_plans - 1))
        return self.resources

    def add_episode(self):
        start = self.when().date()
        active = self.rng.random() < 0.7
        episode = {
            "resourceType": "EpisodeOfCare",
            "id": self.item_id("eoc", 0),
            "status": "active" if active else "finished",
            "type": [concept(SNOMED, "410219002", "Social care assessment")],
            "patient": self.subject(),
            "managingOrganization": {"reference": f"Organization/{SOCIAL_CARE}"},
            "period": {"start": date_text(start)},
        }
        if not active:
            episode["period"]["end"] = date_text(min(self.as_of, start + dt.timedelta(days=self.rng.randint(30, 400))))
        self.resources.append(episode)

    def add_encounter(self, k):
        rng = self.rng
        _, cls, cls_display, type_code, type_display, at_practice = rng.choices(
            ENCOUNTER_KINDS, weights=[kind[0] for kind in ENCOUNTER_KINDS])[0]
        start = self.when()
        if cls == "IMP":
            end = start + dt.timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 10))
        elif cls == "EMER":
            end = start + dt.timedelta(hours=rng.randint(2, 9))
        else:
            end = start + dt.timedelta(minutes=rng.choice((10, 15, 20, 30)))
        # A rare admission still under way, for the acute trust's relationships.
        in_progress = cls == "IMP" and (self.as_of - start.date()).days < 10 and rng.random() < 0.5
        encounter = {
            "resourceType": "Encounter",
            "id": self.item_id("enc", k),
            "status": "in-progress" if in_progress else "finished",
            "class": coding(ACT_CODE, cls, cls_display),
            "type": [concept(SNOMED, type_code, type_display)],
            "subject": self.subject(),
            "period": {"start": instant_text(start)},
            "serviceProvider": {"reference": f"Organization/{self.practice if at_practice else ACUTE_TRUST}"},
        }
        if not in_progress:
            encounter["period"]["end"] = instant_text(end)
        self.resources.append(encounter)
        self.encounter_dates.append(start)
        return (encounter["id"], start)

    def add_conditions(self, count):
        rng = self.rng
        candidates = [c for c in CONDITION_CODES if c[2] <= self.age] or CONDITION_CODES[:1]
        chosen = rng.sample(candidates, min(count, len(candidates)))
        refs = []
        for k, (code, display, onset_age, chronic) in enumerate(chosen):
            onset = self.when()
            status = "active" if chronic and rng.random() < 0.85 else rng.choice(("resolved", "inactive"))
            condition = {
                "resourceType": "Condition",
                "id": self.item_id("cond", k),
                "clinicalStatus": concept(CONDITION_CLINICAL, status),
                "verificationStatus": concept(CONDITION_VERIFICATION, "confirmed"),
                "category": [concept(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
                "code": concept(SNOMED, code, display),
                "subject": self.subject(),
                "onsetDateTime": date_text(onset.date()),
                "recordedDate": instant_text(onset),
            }
            if status != "active":
                condition["abatementDateTime"] = date_text(min(self.as_of, onset.date() + dt.timedelta(days=rng.randint(7, 700))))
            self.resources.append(condition)
            if status == "active":
                refs.append(condition["id"])
        return refs

    def add_observation(self, k, encounter_refs):
        rng = self.rng
        observation = {"resourceType": "Observation", "id": self.item_id("obs", k), "status": "final"}
        if encounter_refs:
            encounter_id, start = rng.choice(encounter_refs)
            effective = start + dt.timedelta(minutes=rng.randint(0, 20))
        else:
            encounter_id, effective = None, self.when()
        if rng.random() < 0.03 and self.age >= 16:
            code, display = SMOKING_STATUS
            value_code, value_display = rng.choice(SMOKING_VALUES)
            observation["category"] = [concept(OBSERVATION_CATEGORY, "social-history", "Social History")]
            observation["code"] = concept(LOINC, code, display)
            observation["subject"] = self.subject()
            observation["effectiveDateTime"] = instant_text(effective)
            observation["valueCodeableConcept"] = concept(SNOMED, value_code, value_display)
        else:
            code, display, category, unit, low, high, decimals = rng.choices(OBSERVATION_CODES, weights=OBSERVATION_WEIGHTS)[0]
            observation["category"] = [concept(OBSERVATION_CATEGORY, category,
                                               "Vital Signs" if category == "vital-signs" else "Laboratory")]
            observation["code"] = concept(LOINC, code, display)
            observation["subject"] = self.subject()
            if encounter_id:
                observation["encounter"] = {"reference": f"Encounter/{encounter_id}"}
            observation["effectiveDateTime"] = instant_text(effective)
            observation["valueQuantity"] = {"value": number(rng.uniform(low, high), decimals), "unit": unit,
                                            "system": UCUM, "code": unit}
        self.observation_codes.add(code)
        self.resources.append(observation)

    def add_medication(self, k):
        rng = self.rng
        code, display, repeat = rng.choice(MEDICATIONS)
        authored = self.when()
        recent = (self.as_of - authored.date()).days <= 365
        status = "active" if repeat and recent and rng.random() < 0.8 else "completed"
        if status == "active":
            self.active_medications += 1
        self.resources.append({
            "resourceType": "MedicationRequest",
            "id": self.item_id("med", k),
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": concept(DMD, code, display),
            "subject": self.subject(),
            "authoredOn": instant_text(authored),
            "requester": {"reference": f"Organization/{self.practice}"},
            "dosageInstruction": [{"text": "One to be taken each day" if repeat else "As directed"}],
        })

    def add_allergy(self, k):
        code, display = self.rng.choice(ALLERGY_CODES)
        self.resources.append({
            "resourceType": "AllergyIntolerance",
            "id": self.item_id("alg", k),
            "clinicalStatus": concept(ALLERGY_CLINICAL, "active"),
            "verificationStatus": concept(ALLERGY_VERIFICATION, "confirmed"),
            "code": concept(SNOMED, code, display),
            "patient": self.subject(),
            "recordedDate": instant_text(self.when()),
        })

    def add_care_plan(self, k, condition_refs, social):
        start = self.when()
        plan = {
            "resourceType": "CarePlan",
            "id": self.item_id("cp", k),
            "status": "active" if self.rng.random() < 0.7 else "completed",
            "intent": "plan",
            "category": [concept(SNOMED, "734163000", "Care plan")],
            "title": "Social care support plan" if social else "Long-term condition care plan",
            "subject": self.subject(),
            "period": {"start": date_text(start.date())},
            "author": {"reference": f"Organization/{SOCIAL_CARE if social else self.practice}"},
        }
        if condition_refs and not social:
            plan["addresses"] = [{"reference": f"Condition/{ref}"} for ref in condition_refs[:3]]
        self.resources.append(plan)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citizens", type=int, default=1000, help="how many citizens (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="the seed; the same seed gives the same output (default 1)")
    parser.add_argument("--mean-resources", type=float, default=100,
                        help="mean resources per citizen, Patient included (default 100; the old have a few hundred)")
    parser.add_argument("--home-share", type=float, default=0.8,
                        help=f"share of citizens registered with {HOME_PRACTICE}, the practice of the dev GP token "
                             "(default 0.8; the rest with invented practices A81002-A81005)")
    parser.add_argument("--as-of", default="2026-11-01",
                        help="the day the records end (default 2026-11-01); fixed so output does not depend on today")
    parser.add_argument("--out", default="-", help="the NDJSON file to write (default stdout)")
    parser.add_argument("--targets", help="also write a TSV of each citizen's search keys (for bench/search.sh): "
                                          "nhs, practice, family, birthDate, gender, LOINC codes, active medications, encounters")
    args = parser.parse_args()
    if args.citizens < 0 or args.citizens > 3_000_000:
        parser.error("--citizens must be between 0 and 3000000")
    if not 0 <= args.home_share <= 1:
        parser.error("--home-share must be between 0 and 1")
    as_of = dt.date.fromisoformat(args.as_of)
    mean_weight = mean_record_weight()

    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="\n")
    targets = open(args.targets, "w", encoding="utf-8", newline="\n") if args.targets else None
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
    resources = 0
    try:
        for resource in organisation_resources():
            out.write(dumps(resource) + "\n")
            resources += 1
        for index in range(args.citizens):
            citizen = citizen_record(args.seed, index, args.mean_resources, args.home_share, as_of, mean_weight)
            items = citizen.build()
            out.write("\n".join(dumps(r) for r in items) + "\n")
            resources += len(items)
            if targets:
                targets.write("\t".join([citizen.nhs, citizen.practice, citizen.family, date_text(citizen.birth_date),
                                         citizen.gender, ",".join(sorted(citizen.observation_codes)),
                                         str(citizen.active_medications), str(len(citizen.encounter_dates))]) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
        if targets:
            targets.close()
    print(f"population.py: {args.citizens} citizens, {resources} resources", file=sys.stderr)


if __name__ == "__main__":
    main()
