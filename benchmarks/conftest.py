"""Benchmarks are collected from this folder only; see benchmarks/targets.py."""
