"""The engine: screening and case-conference workflows for 重層的支援体制整備事業."""
