"""Validates an XML file against a published ISO 20022 schema.

Usage: xsd.py SCHEMA FILE, where SCHEMA names a schema file shipped in the
sepaxml package (for example pain.001.001.09.xsd, the schema as ISO 20022
publishes it). Prints "valid", or the first violation and exits 1.
"""

import os
import sys

import sepaxml
import xmlschema


def main() -> int:
    schema_name, path = sys.argv[1], sys.argv[2]
    schema = xmlschema.XMLSchema(
        os.path.join(os.path.dirname(sepaxml.__file__), "schemas", schema_name)
    )
    try:
        schema.validate(path)
    except xmlschema.XMLSchemaValidationError as e:
        print(f"invalid: {e.reason} at {e.path}")
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
