"""Validates FHIR resources (JSON files) against the R4B models of the
`fhir.resources` package: every element's type, cardinality and required
elements. Usage: validate.py FILE...; exits 1 naming each invalid file."""

import importlib
import json
import sys


def model(resource_type):
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def main(paths):
    failed = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        try:
            model(data["resourceType"]).parse_obj(data)
            print(f"valid: {path} ({data['resourceType']})")
        except Exception as error:  # the validator's own report says what is wrong
            failed += 1
            print(f"INVALID: {path} ({data.get('resourceType')}): {error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
