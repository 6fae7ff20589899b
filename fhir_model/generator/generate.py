#!/usr/bin/env python3
"""Generates fhir_model's R4 definitions from the official package hl7.fhir.r4.examples 4.0.1.

Writes fhir_model/generated/definitions.cpp (the element tables the validator and _summary use, embedded
as JSON; a row is [name, min, max (-1 for *), [types], isSummary, [reference targets]?, value set index?]),
fhir_model/generated/search_parameters.cpp (the search parameters of the supported types, see
search_parameters.py) and tests/data/r4-examples/ (the official examples of the supported types). Python 3 stdlib only.

    python3 fhir_model/generator/generate.py [--package DIR]

Without --package it runs `npm pack hl7.fhir.r4.examples@4.0.1` in a temporary folder and unpacks it.
SUPPORTED_TYPES below is the one place to add a resource type.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

import search_parameters
from embed import write_embedded_json

PACKAGE = "hl7.fhir.r4.examples@4.0.1"

# The resource types this server stores. Add a type here and regenerate; nothing else changes.
SUPPORTED_TYPES = sorted([
    "Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization", "Location",
    "Encounter", "EpisodeOfCare", "Condition", "AllergyIntolerance", "Observation", "Procedure",
    "Immunization", "Medication", "MedicationRequest", "MedicationStatement", "DiagnosticReport",
    "DocumentReference", "CarePlan", "CareTeam", "Goal", "ServiceRequest", "Appointment", "Flag",
    "Consent", "Questionnaire", "QuestionnaireResponse", "Communication", "Device", "Provenance", "Group",
    "AuditEvent", "List", "Specimen", "FamilyMemberHistory", "RiskAssessment", "ImagingStudy",
    "NutritionOrder", "Media",
    "Account", "AdverseEvent", "AppointmentResponse", "Basic", "BodyStructure", "ChargeItem", "Claim",
    "ClaimResponse", "ClinicalImpression", "CommunicationRequest", "Composition", "Coverage",
    "CoverageEligibilityRequest", "CoverageEligibilityResponse", "DetectedIssue", "DeviceRequest",
    "DeviceUseStatement", "DocumentManifest", "EnrollmentRequest", "ExplanationOfBenefit",
    "ImmunizationEvaluation", "ImmunizationRecommendation", "Invoice", "MeasureReport",
    "MedicationAdministration", "MedicationDispense", "MolecularSequence", "Person", "RequestGroup",
    "ResearchSubject", "Schedule", "SupplyDelivery", "SupplyRequest", "VisionPrescription",
    # Outside the Patient compartment, but seen only with the item its securityContext names
    # (storage/src/visibility_rule.hpp, rule 4); its bytes are kept apart from its JSON.
    "Binary",
    # Outside the Patient compartment: directories, definitions, knowledge and terminology. None may
    # name a citizen or a citizen's item (fhir_model/src/outside_record.cpp).
    "ActivityDefinition", "BiologicallyDerivedProduct", "CapabilityStatement", "CatalogEntry",
    "ChargeItemDefinition", "CodeSystem", "CompartmentDefinition", "ConceptMap", "Contract",
    "DeviceDefinition", "DeviceMetric", "EffectEvidenceSynthesis", "Endpoint", "EnrollmentResponse",
    "EventDefinition", "Evidence", "EvidenceVariable", "ExampleScenario", "GraphDefinition",
    "GuidanceResponse", "HealthcareService", "ImplementationGuide", "InsurancePlan", "Library", "Linkage",
    "Measure", "MedicationKnowledge", "MedicinalProduct", "MedicinalProductAuthorization",
    "MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient",
    "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "MessageDefinition",
    "MessageHeader", "NamingSystem", "ObservationDefinition", "OperationDefinition",
    "OrganizationAffiliation", "PaymentNotice", "PaymentReconciliation", "PlanDefinition",
    "ResearchDefinition", "ResearchElementDefinition", "ResearchStudy", "RiskEvidenceSynthesis",
    "SearchParameter", "Slot", "SpecimenDefinition", "StructureDefinition", "StructureMap", "Substance",
    "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
    "SubstanceSourceMaterial", "SubstanceSpecification", "TerminologyCapabilities", "TestReport",
    "TestScript", "ValueSet", "VerificationResult",
])

# Types of which the package holds the specification's own definitions (every SearchParameter,
# ValueSet, CodeSystem of R4) besides a few examples: only the files named as examples are copied.
DEFINITION_TYPES = {
    "CapabilityStatement", "CodeSystem", "CompartmentDefinition", "ConceptMap", "ImplementationGuide",
    "NamingSystem", "OperationDefinition", "SearchParameter", "StructureDefinition", "StructureMap",
    "TerminologyCapabilities", "ValueSet",
}

# Types a stored resource may carry in `contained` although the server does not store them on their
# own (a Medication's ingredient Substance, a ServiceRequest's Specimen, a Questionnaire's ValueSet).
CONTAINED_ONLY_TYPES = sorted([
    "OperationOutcome",
])

# Types the server reads and writes but never stores, defined so that their XML is converted as any
# resource's (fhir_model/src/xml_*.cpp): the Bundles it answers with and takes (transactions,
# batches), and the Parameters of a FHIRPath Patch.
FORMAT_ONLY_TYPES = ["Bundle", "Parameters"]

# Where caregate places a type in the Patient compartment that R4's CompartmentDefinition lists without
# a parameter: a Device's `patient` is the citizen it is for (an implant, a home monitor, a hoist), so
# the device is that citizen's item and is seen only as their record is (one for nobody stays a
# directory item).
COMPARTMENT_ADDITIONS = {"Device": ["Device.patient"]}

EXAMPLE_SIZE_LIMIT = 1024 * 1024
SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"


def fetch_package():
    work = tempfile.mkdtemp(prefix="caregate-r4-")
    subprocess.run(["npm", "pack", PACKAGE], cwd=work, check=True, stdout=subprocess.DEVNULL)
    archive = glob.glob(os.path.join(work, "*.tgz"))[0]
    with tarfile.open(archive) as tar:
        tar.extractall(work)
    return os.path.join(work, "package")


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def type_code(t):
    """The FHIR type of an ElementDefinition.type entry (System.String etc. mapped back via fhir-type)."""
    code = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext["url"] == FHIR_TYPE_EXT:
                return ext.get("valueUrl") or ext.get("valueUri")
        return {"String": "string", "Boolean": "boolean", "Integer": "integer", "Decimal": "decimal",
                "Date": "date", "DateTime": "dateTime", "Time": "time"}[code.split(".")[-1]]
    return code


class Package:
    def __init__(self, folder):
        self.folder = folder
        self.sds = {}           # type name -> StructureDefinition (base specialisations only)
        self.value_sets = {}    # url -> ValueSet
        self.code_systems = {}  # url -> CodeSystem
        self.search_params = {} # (base, code) -> SearchParameter
        for path in glob.glob(os.path.join(folder, "StructureDefinition-*.json")):
            sd = load_json(path)
            if sd.get("derivation") == "specialization" and sd["url"] == SD_PREFIX + sd["type"] \
                    and sd["kind"] in ("primitive-type", "complex-type", "resource"):
                self.sds[sd["type"]] = sd
        for path in glob.glob(os.path.join(folder, "ValueSet-*.json")):
            vs = load_json(path)
            self.value_sets[vs["url"]] = vs
        for path in glob.glob(os.path.join(folder, "CodeSystem-*.json")):
            cs = load_json(path)
            self.code_systems[cs["url"]] = cs
        params = [e["resource"] for e in load_json(os.path.join(folder, "Bundle-searchParams.json"))["entry"]]
        for sp in params:
            for base in sp.get("base", []):
                self.search_params[(base, sp["code"])] = sp
        self.compartment = load_json(os.path.join(folder, "CompartmentDefinition-patient.json"))

    def resource_types(self):
        return sorted(n for n, sd in self.sds.items() if sd["kind"] == "resource" and not sd.get("abstract"))

    # --- value sets -------------------------------------------------------------------------------
    def codes_of_system(self, url):
        cs = self.code_systems.get(url)
        if cs is None or cs.get("content") != "complete":
            return None
        out = []

        def walk(concepts):
            for c in concepts:
                out.append(c["code"])
                walk(c.get("concept", []))
        walk(cs.get("concept", []))
        return out or None

    def expand(self, url, seen=()):
        """[[system, [codes]], ...] when the value set is enumerable from the package, else None."""
        url = url.split("|")[0]
        vs = self.value_sets.get(url)
        if vs is None or url in seen or "compose" not in vs or vs["compose"].get("exclude"):
            return None
        result = {}
        for inc in vs["compose"].get("include", []):
            if inc.get("filter") or "system" not in inc:
                if inc.get("valueSet") and "system" not in inc and not inc.get("filter"):
                    for inner in inc["valueSet"]:
                        sub = self.expand(inner, seen + (url,))
                        if sub is None:
                            return None
                        for system, codes in sub:
                            result.setdefault(system, []).extend(codes)
                    continue
                return None
            if inc.get("valueSet"):
                return None
            if "concept" in inc:
                codes = [c["code"] for c in inc["concept"]]
            else:
                codes = self.codes_of_system(inc["system"])
                if codes is None:
                    return None
            result.setdefault(inc["system"], []).extend(codes)
        if not result:
            return None
        return [[system, sorted(set(codes))] for system, codes in sorted(result.items())]

    # --- compartment --------------------------------------------------------------------------------
    def compartment_paths(self, type_name):
        for res in self.compartment["resource"]:
            if res["code"] != type_name:
                continue
            paths = []
            for code in res.get("param", []):
                sp = self.search_params.get((type_name, code))
                if sp is None:
                    sys.exit(f"no search parameter {type_name}.{code}")
                for part in sp["expression"].split("|"):
                    part = part.strip().replace(".where(resolve() is Patient)", "")
                    if part.startswith(type_name + ".") and re.fullmatch(r"[A-Za-z.]+", part) and part not in paths:
                        paths.append(part)
            return paths
        return None


class Generator:
    def __init__(self, package):
        self.package = package
        self.types = {}        # name -> {"kind":..., "elements": [...]}
        self.value_set_index = {}
        self.value_sets = []
        self.pending = []

    def need(self, name):
        if name in self.types or name in self.pending or name in ("Resource", "Element", "BackboneElement"):
            return
        if name not in self.package.sds:
            sys.exit(f"unknown type {name}")
        self.pending.append(name)

    def binding_index(self, element, codes):
        binding = element.get("binding")
        if not binding or binding.get("strength") != "required" or "valueSet" not in binding:
            return -1
        if not set(codes) & {"code", "Coding", "CodeableConcept"}:
            return -1
        url = binding["valueSet"].split("|")[0]
        if url not in self.value_set_index:
            expansion = self.package.expand(url)
            if expansion is None:
                self.value_set_index[url] = -1
            else:
                self.value_set_index[url] = len(self.value_sets)
                self.value_sets.append({"url": url, "include": expansion})
        return self.value_set_index[url]

    def build(self, name):
        sd = self.package.sds[name]
        kind = {"primitive-type": "primitive", "complex-type": "complex", "resource": "resource"}[sd["kind"]]
        if kind == "primitive":
            self.types[name] = {"kind": "primitive"}
            return
        elements = sd["snapshot"]["element"]
        # Children grouped by parent path; backbone elements become types named by their path.
        children = {}
        for e in elements[1:]:
            parent, _, _ = e["path"].rpartition(".")
            children.setdefault(parent, []).append(e)
        backbones = {e["path"] for e in elements[1:] if e["path"] in children}
        for owner in [name] + sorted(backbones):
            rows = []
            for e in children.get(owner, []):
                child = e["path"].rpartition(".")[2]
                if child.endswith("[x]") and len(e.get("type", [])) == 1:
                    pass  # still a choice in JSON: valueQuantity, never value
                if "contentReference" in e:
                    types = [e["contentReference"].lstrip("#")]
                elif e["path"] in backbones:
                    types = [e["path"]]
                else:
                    types = []
                    for t in e.get("type", []):
                        code = type_code(t)
                        if owner == name and kind == "resource" and child == "id":
                            code = "id"
                        if code not in types:
                            types.append(code)
                targets = []
                for t in e.get("type", []):
                    if type_code(t) == "Reference":
                        for profile in t.get("targetProfile", []):
                            if profile.startswith(SD_PREFIX):
                                targets.append(profile[len(SD_PREFIX):])
                for t in types:
                    if not t.startswith(name + ".") and "." not in t:
                        self.need(t)
                max_ = -1 if e["max"] == "*" else int(e["max"])
                # isSummary: kept by _summary=true (summary.cpp); absent counts as false.
                row = [child, e["min"], max_, types, bool(e.get("isSummary", False))]
                vs = self.binding_index(e, types)
                if targets or vs >= 0:
                    row.append(sorted(set(targets)))
                if vs >= 0:
                    row.append(vs)
                rows.append(row)
            self.types[owner] = {"kind": kind if owner == name else "backbone", "elements": rows}

    def run(self):
        for t in SUPPORTED_TYPES + CONTAINED_ONLY_TYPES + FORMAT_ONLY_TYPES:
            self.need(t)
        while self.pending:
            self.build(self.pending.pop(0))
        compartment = {}
        for t in SUPPORTED_TYPES:
            paths = self.package.compartment_paths(t) or COMPARTMENT_ADDITIONS.get(t)
            if not paths:
                continue  # not in the compartment, or listed without parameters (Device, Practitioner, ...)
            for p in paths:
                owner, _, child = p.rpartition(".")
                rows = self.types.get(owner, {}).get("elements", [])
                if not any(r[0] == child and "Reference" in r[3] for r in rows):
                    sys.exit(f"compartment path {p} is not a Reference element of {owner}")
            compartment[t] = paths
        return {
            "resourceTypes": self.package.resource_types(),
            "supported": SUPPORTED_TYPES,
            "containable": sorted(SUPPORTED_TYPES + CONTAINED_ONLY_TYPES),
            "compartment": compartment,
            "valueSets": self.value_sets,
            "types": {k: self.types[k] for k in sorted(self.types)},
        }


def write_definitions(data, out_path):
    write_embedded_json(data, out_path, "generated_definition", "r4", [
        "GENERATED by fhir_model/generator/generate.py from hl7.fhir.r4.examples 4.0.1 — do not edit.",
        "The R4 element tables for the supported resource types and the data types they reach, the",
        "enumerable required bindings, and the Patient-compartment paths, as one JSON document that",
        "definitions.cpp parses once (see fhir_model/src/definitions.hpp).",
    ])


def copy_examples(package_dir, out_dir):
    if os.path.isdir(out_dir):
        for old in glob.glob(os.path.join(out_dir, "*.json")):
            os.remove(old)
    os.makedirs(out_dir, exist_ok=True)
    count = 0
    for path in sorted(glob.glob(os.path.join(package_dir, "*.json"))):
        base = os.path.basename(path)
        if base.split("-")[0] not in SUPPORTED_TYPES or os.path.getsize(path) > EXAMPLE_SIZE_LIMIT:
            continue
        if base.split("-")[0] in DEFINITION_TYPES and "example" not in base.lower():
            continue
        try:
            resource_type = load_json(path).get("resourceType")
        except (ValueError, UnicodeDecodeError):
            continue
        if resource_type in SUPPORTED_TYPES:
            shutil.copyfile(path, os.path.join(out_dir, base))
            count += 1
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", help="folder of the unpacked package (default: npm pack " + PACKAGE + ")")
    args = parser.parse_args()
    package_dir = args.package or fetch_package()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    data = Generator(Package(package_dir)).run()
    out = os.path.join(root, "fhir_model", "generated", "definitions.cpp")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    write_definitions(data, out)
    params = search_parameters.build(package_dir, SUPPORTED_TYPES)
    search_parameters.write(params, os.path.join(root, "fhir_model", "generated", "search_parameters.cpp"))
    examples = copy_examples(package_dir, os.path.join(root, "tests", "data", "r4-examples"))
    print(f"{out}: {len(data['types'])} types, {len(data['valueSets'])} value sets; "
          f"{len(params['parameters'])} search parameters ({len(params['unsupported'])} unsupported); {examples} examples")


if __name__ == "__main__":
    main()
