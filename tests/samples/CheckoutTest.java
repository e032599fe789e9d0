package com.example.app;

import org.junit.Test;

/**
 * Checkout happy path.
 * @zephyr:SHOP-T42
 */
public class CheckoutTest {
    @Test
    @TestRail(id = "C1234")
    public void testCheckout() {
        // the test body does not matter to the extractor: only annotations and JavaDoc tags do
    }
}
