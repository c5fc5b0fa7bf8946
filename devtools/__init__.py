"""Local stand-ins for AWS (moto's ThreadedMotoServer) and chat webhooks, on 127.0.0.1 only.

Used by the integration tests and `make demo`; never shipped to Lambda.
"""
