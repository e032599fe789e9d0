import org.junit.Test;
import static io.restassured.RestAssured.given;

public class OrdersApiTest {
    @Test
    public void listsOrders() {
        given()
            .header("Accept", "application/json")
        .when()
            .get("https://api.example.com/orders")
        .then()
            .statusCode(200);
    }
}
