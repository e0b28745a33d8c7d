"""Modbus connector."""
